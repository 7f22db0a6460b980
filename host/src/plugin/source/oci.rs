//! Pulling a component from an OCI registry (the distribution spec's pull: a manifest, then a
//! blob), as `wkg oci push` and `oras push` store one: an image manifest whose layer is the
//! component (`application/wasm`; older tools `application/vnd.wasm.content.layer.v1+wasm`;
//! a manifest of one layer of any type is taken too). An image index is followed to its
//! `wasm` platform entry, or to its only entry.
//!
//! Registries on loopback (`localhost`, `127.0.0.1`, `[::1]`) are spoken to over plain HTTP, as
//! Docker does; all others over HTTPS. Authentication: anonymous, or with the credentials of
//! the Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, `auths`),
//! through the registry's Bearer token challenge or HTTP Basic; Amazon ECR registries
//! (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) with a token from ECR's GetAuthorizationToken and
//! the task role ([`ecr_basic_auth`]).
//!
//! Every byte is checked: a manifest named by digest against it, the layer against the
//! manifest's digest for it.

use super::Fetched;
use super::Pin;
use super::http::{Getter, Response};
use ::http::header::{ACCEPT, AUTHORIZATION};
use ::http::{HeaderName, HeaderValue, Uri};
use base64::Engine as _;
use serde_json::Value;

/// Media types of a manifest the router reads.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
/// Layer media types of a component, as the tools write them.
const WASM_LAYER_TYPES: [&str; 2] = [
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];
/// Manifests followed through indexes before giving up.
const MAX_INDEX_DEPTH: usize = 2;

/// `registry/repository[:tag][@sha256:…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// `path/to/plugin`.
    pub repository: String,
    /// The tag (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// The manifest's digest.
    pub digest: Option<Pin>,
}

impl Reference {
    /// Parse what follows `oci://`.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let how = "write oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST, e.g. oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/plugins/redact:1.0";
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let pin = digest
                    .strip_prefix("sha256:")
                    .and_then(|hex| Pin::parse(hex).ok())
                    .ok_or_else(|| {
                        format!("oci://{text}: {digest:?} is not a sha256 digest; {how}")
                    })?;
                (name, Some(pin))
            }
            None => (text, None),
        };
        let (registry, path) = name
            .split_once('/')
            .filter(|(r, p)| !r.is_empty() && !p.is_empty())
            .ok_or_else(|| format!("oci://{text} names no repository; {how}"))?;
        let last = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last..].split_once(':') {
            Some((_, tag)) => (
                &path[..last + path[last..].len() - tag.len() - 1],
                Some(tag),
            ),
            None => (path, None),
        };
        let repository_ok = repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
        if !repository_ok {
            return Err(format!(
                "oci://{text}: repository {repository:?} may hold only lower-case letters, digits, '.', '_', '-' and '/'; {how}"
            ));
        }
        let tag_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if let Some(tag) = tag.filter(|t| !tag_ok(t)) {
            return Err(format!("oci://{text}: {tag:?} is not a tag; {how}"));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag
                .map(str::to_string)
                .or_else(|| digest.is_none().then(|| "latest".to_string())),
            digest,
        })
    }

    /// What the manifest is asked for by: the digest when given, else the tag.
    fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("sha256:{}", digest.hex()),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `http://` for loopback registries, `https://` for the others.
    fn base(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(self.registry.as_str(), |(host, _)| host);
        let loopback = host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        let scheme = if loopback { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }

    fn uri(&self, kind: &str, reference: &str) -> Result<Uri, String> {
        let text = format!("{}/v2/{}/{kind}/{reference}", self.base(), self.repository);
        text.parse().map_err(|e| format!("{text}: {e}"))
    }
}

/// The next step from a manifest: the component's layer, or (from an index) another manifest.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The component's layer.
    Layer(Pin),
    /// A manifest an index points to.
    Manifest(Pin),
}

/// Read a manifest (or an index).
pub fn next(manifest: &[u8]) -> Result<Next, String> {
    let doc: Value =
        serde_json::from_slice(manifest).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let digest_of = |entry: &Value| {
        entry["digest"]
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .and_then(|hex| Pin::parse(hex).ok())
            .ok_or_else(|| format!("the manifest names an entry without a sha256 digest: {entry}"))
    };
    if let Some(entries) = doc["manifests"].as_array() {
        let wasm = entries
            .iter()
            .find(|m| m["platform"]["architecture"].as_str() == Some("wasm"));
        return match (wasm, entries.as_slice()) {
            (Some(entry), _) | (None, [entry]) => Ok(Next::Manifest(digest_of(entry)?)),
            _ => Err(format!(
                "the reference is an index of {} manifests, none for the wasm architecture; name the component's manifest by digest",
                entries.len()
            )),
        };
    }
    let layers = doc["layers"]
        .as_array()
        .ok_or("the manifest has no layers: it is not a component pushed as an OCI artifact")?;
    let wasm = layers.iter().find(|l| {
        l["mediaType"]
            .as_str()
            .is_some_and(|t| WASM_LAYER_TYPES.contains(&t))
    });
    match (wasm, layers.as_slice()) {
        (Some(layer), _) | (None, [layer]) => Ok(Next::Layer(digest_of(layer)?)),
        _ => Err(format!(
            "none of the manifest's {} layers is a component (media type {}); push the .wasm with `wkg oci push` or `oras push REF plugin.wasm:application/wasm`",
            layers.len(),
            WASM_LAYER_TYPES.join(" or ")
        )),
    }
}

/// The component's layer reached from the manifest `first` through `blob` (a lookup by digest:
/// the cache), when every manifest on the way is there.
pub fn cached_layer(first: &Pin, blob: impl Fn(&str) -> Option<Vec<u8>>) -> Option<Pin> {
    let mut manifest = first.clone();
    for _ in 0..=MAX_INDEX_DEPTH {
        match next(&blob(manifest.hex())?).ok()? {
            Next::Layer(layer) => return Some(layer),
            Next::Manifest(child) => manifest = child,
        }
    }
    None
}

/// Pull the component `reference` names; the manifests on the way are returned to be cached
/// when the reference is by digest.
pub async fn pull(reference: &Reference) -> Result<Fetched, String> {
    let getter = Getter::new(reference.base().starts_with("https"))?;
    let mut auth = Auth::new(reference);
    let mut manifests = Vec::new();
    let mut name = reference.manifest_reference();
    let mut expected = reference.digest.clone();
    let layer = loop {
        let response = auth
            .get(
                &getter,
                reference.uri("manifests", &name)?,
                vec![(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES))],
            )
            .await?;
        if let Some(expected) = &expected {
            check_digest(&format!("manifest {name}"), expected, &response.body)?;
        }
        let step = next(&response.body)?;
        manifests.push(response.body);
        match step {
            Next::Layer(layer) => break layer,
            Next::Manifest(_) if manifests.len() > MAX_INDEX_DEPTH => {
                return Err(
                    "indexes nest too deep; name the component's manifest by digest".into(),
                );
            }
            Next::Manifest(child) => {
                name = format!("sha256:{}", child.hex());
                expected = Some(child);
            }
        }
    };
    let blob = auth
        .get(
            &getter,
            reference.uri("blobs", &format!("sha256:{}", layer.hex()))?,
            Vec::new(),
        )
        .await?;
    check_digest("the component's layer", &layer, &blob.body)?;
    Ok(Fetched {
        wasm: blob.body,
        manifests: if reference.digest.is_some() {
            manifests
        } else {
            Vec::new()
        },
    })
}

fn check_digest(what: &str, expected: &Pin, bytes: &[u8]) -> Result<(), String> {
    let actual = super::sha256_hex(bytes);
    if actual == expected.hex() {
        Ok(())
    } else {
        Err(format!(
            "{what} has sha256 {actual}, not sha256:{}: the registry sent other bytes than it names; do not use it",
            expected.hex()
        ))
    }
}

/// The credentials of one pull: a Basic credential (Docker config or ECR) and, once the
/// registry has challenged, the header that answered.
struct Auth<'a> {
    reference: &'a Reference,
    header: Option<HeaderValue>,
}

impl<'a> Auth<'a> {
    fn new(reference: &'a Reference) -> Self {
        Auth {
            reference,
            header: None,
        }
    }

    /// GET with the current credentials; on a challenge, answer it once and retry.
    async fn get(
        &mut self,
        getter: &Getter,
        uri: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Response, String> {
        let with_auth = |header: &Option<HeaderValue>| {
            let mut all = headers.clone();
            all.extend(header.clone().map(|h| (AUTHORIZATION, h)));
            all
        };
        let response = getter
            .get_or_unauthorized(uri.clone(), with_auth(&self.header))
            .await?;
        if response.status != 401 {
            return Ok(response);
        }
        let challenge = response
            .header("www-authenticate")
            .unwrap_or("")
            .to_string();
        self.header = Some(self.answer(&challenge).await?);
        getter.get(uri, with_auth(&self.header)).await.map_err(|e| {
            format!("{e}; the registry refused the credentials (the Docker config's `auths` for {}, or the task role for Amazon ECR)", self.reference.registry)
        })
    }

    /// The `Authorization` value answering `challenge`.
    async fn answer(&self, challenge: &str) -> Result<HeaderValue, String> {
        let registry = &self.reference.registry;
        let basic = match docker_config_auth(registry) {
            Some(basic) => Some(basic),
            None if is_ecr(registry) => {
                Some(ecr_basic_auth(registry, &ecr_endpoint(registry), Default::default()).await?)
            }
            None => None,
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let params = challenge_params(params);
        if scheme.eq_ignore_ascii_case("basic") {
            let basic = basic.ok_or_else(|| {
                format!(
                    "{registry} wants credentials: add them to the Docker config (`docker login {registry}` or `oras login {registry}` writes ~/.docker/config.json; set DOCKER_CONFIG to its directory)"
                )
            })?;
            return header_value(&format!("Basic {basic}"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "{registry} asks for {scheme:?} authentication, which the router does not speak (Basic or Bearer)"
            ));
        }
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!("{registry}: a Bearer challenge without a realm: {challenge:?}")
            })?;
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                if k == "service" || k == "scope" {
                    query.append_pair(k, v);
                }
            }
            if !params.iter().any(|(k, _)| k == "scope") {
                query.append_pair(
                    "scope",
                    &format!("repository:{}:pull", self.reference.repository),
                );
            }
            query.finish()
        };
        let separator = if realm.contains('?') { '&' } else { '?' };
        let token_uri: Uri = format!("{realm}{separator}{query}")
            .parse()
            .map_err(|e| format!("{registry}: the token realm {realm:?} is not a URL: {e}"))?;
        let headers = match &basic {
            Some(basic) => vec![(AUTHORIZATION, header_value(&format!("Basic {basic}"))?)],
            None => Vec::new(),
        };
        let token = Getter::new(token_uri.scheme_str() == Some("https"))?
            .get(token_uri, headers)
            .await
            .map_err(|e| format!("{registry}: getting a pull token: {e}"))?;
        let doc: Value = serde_json::from_slice(&token.body)
            .map_err(|e| format!("{registry}: the token answer is not JSON: {e}"))?;
        let token = doc["token"]
            .as_str()
            .or_else(|| doc["access_token"].as_str())
            .ok_or_else(|| format!("{registry}: the token answer has no token"))?;
        header_value(&format!("Bearer {token}"))
    }
}

fn header_value(text: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| "a credential is not a valid header value".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// `realm="…",service="…"` → pairs (quoted values may hold commas).
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        pairs.push((key, value.to_string()));
        rest = next.trim_start_matches([',', ' ']);
    }
    pairs
}

/// The base64 `user:password` the Docker config holds for `registry`.
fn docker_config_auth(registry: &str) -> Option<String> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read(dir.join("config.json")).ok()?;
    let doc: Value = serde_json::from_slice(&text).ok()?;
    let auths = doc["auths"].as_object()?;
    let host_of = |key: &str| {
        let key = key.split_once("://").map_or(key, |(_, rest)| rest);
        key.split('/').next().unwrap_or(key).to_string()
    };
    let entry = auths.iter().find(|(k, _)| host_of(k) == registry)?.1;
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        return Some(auth.to_string());
    }
    let (user, password) = (entry["username"].as_str()?, entry["password"].as_str()?);
    Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]`.
fn is_ecr(registry: &str) -> bool {
    ecr_region(registry).is_some()
}

fn ecr_region(registry: &str) -> Option<&str> {
    let host = registry.split(':').next()?;
    let parts: Vec<&str> = host.split('.').collect();
    let ecr = parts.get(1..3)?;
    let account_ok = parts[0].len() == 12 && parts[0].bytes().all(|b| b.is_ascii_digit());
    let suffix_ok = parts.get(4) == Some(&"amazonaws")
        && matches!(parts.get(5..), Some(["com"] | ["com", "cn"]));
    (account_ok && ecr[0] == "dkr" && (ecr[1] == "ecr" || ecr[1] == "ecr-fips") && suffix_ok)
        .then(|| parts[3])
}

/// The ECR API endpoint for `registry`: `AWS_ENDPOINT_URL_ECR`, else `AWS_ENDPOINT_URL`, else
/// the registry's region's.
fn ecr_endpoint(registry: &str) -> String {
    let region = ecr_region(registry).unwrap_or("us-east-1");
    ["AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("https://api.ecr.{region}.amazonaws.com"))
}

/// ECR's answer to `docker login`: GetAuthorizationToken at `endpoint`, signed with the task
/// role's credentials (or `overrides`'), whose token is the base64 `AWS:password` of HTTP Basic.
pub async fn ecr_basic_auth(
    registry: &str,
    endpoint: &str,
    overrides: crate::net::aws_connection::AwsOverrides,
) -> Result<String, String> {
    use crate::net::http_client::PreparedRequest;
    use crate::net::sigv4::{AwsSigV4Config, Signer};
    let region = ecr_region(registry).unwrap_or("us-east-1");
    let uri: Uri = format!("{}/", endpoint.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("the ECR endpoint {endpoint:?} is not a URL: {e}"))?;
    let signer = Signer::new(
        AwsSigV4Config {
            service: "ecr".into(),
            region: region.into(),
            role_arn: None,
            external_id: None,
            sts_endpoint: None,
            profile: None,
        },
        overrides,
    );
    let mut headers = ::http::HeaderMap::new();
    headers.insert(
        ::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"),
    );
    let request = PreparedRequest {
        id: 0,
        method: ::http::Method::POST,
        uri,
        headers,
        body: bytes::Bytes::from_static(b"{}"),
    };
    let signed = signer
        .sign(&request)
        .await
        .map_err(|e| format!("{registry} is Amazon ECR: {e}"))?;
    let client = crate::net::http_client::HttpClient::new(
        super::CONNECT_TIMEOUT,
        super::FETCH_TIMEOUT,
        1 << 20,
        signed.uri.scheme_str() == Some("https"),
    )
    .map_err(|e| e.to_string())?;
    let answer = client
        .send(&signed)
        .await
        .map_err(|e| format!("{registry} is Amazon ECR: GetAuthorizationToken: {e}"))?;
    if answer.status != 200 {
        return Err(format!(
            "{registry} is Amazon ECR: GetAuthorizationToken answered {}: {}; the task role needs ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer",
            answer.status,
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{registry}: GetAuthorizationToken's answer is not JSON: {e}"))?;
    doc["authorizationData"][0]["authorizationToken"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{registry}: GetAuthorizationToken's answer has no token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_ports_paths_tags_and_digests() {
        let r = Reference::parse("127.0.0.1:5000/plugins/redact:1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "plugins/redact");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.base(), "http://127.0.0.1:5000");
        assert_eq!(r.manifest_reference(), "1.2");
        let hex = "0f".repeat(32);
        let r = Reference::parse(&format!("ghcr.io/acme/redact@sha256:{hex}")).unwrap();
        assert_eq!((r.tag, r.digest.unwrap().hex()), (None, hex.as_str()));
        assert_eq!(
            Reference::parse("ghcr.io/acme/redact")
                .unwrap()
                .tag
                .as_deref(),
            Some("latest")
        );
        assert_eq!(
            Reference::parse("ghcr.io/a/b").unwrap().base(),
            "https://ghcr.io"
        );
        assert!(
            Reference::parse("ghcr.io")
                .unwrap_err()
                .contains("names no repository")
        );
        assert!(
            Reference::parse("ghcr.io/Acme/x")
                .unwrap_err()
                .contains("lower-case")
        );
        assert!(
            Reference::parse("ghcr.io/a/x@sha256:12")
                .unwrap_err()
                .contains("not a sha256 digest")
        );
    }

    #[test]
    fn manifests_lead_to_the_wasm_layer_and_indexes_to_the_wasm_manifest() {
        let d = |c: &str| format!("sha256:{}", c.repeat(64));
        let manifest = serde_json::json!({"layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d("1")},
            {"mediaType": "application/wasm", "digest": d("2")},
        ]});
        assert_eq!(
            next(manifest.to_string().as_bytes()),
            Ok(Next::Layer(Pin("2".repeat(64))))
        );
        let single = serde_json::json!({"layers": [{"mediaType": "x/y", "digest": d("3")}]});
        assert_eq!(
            next(single.to_string().as_bytes()),
            Ok(Next::Layer(Pin("3".repeat(64))))
        );
        let two = serde_json::json!({"layers": [{"mediaType": "x/y", "digest": d("3")}, {"mediaType": "x/z", "digest": d("4")}]});
        assert!(
            next(two.to_string().as_bytes())
                .unwrap_err()
                .contains("oras push")
        );
        let index = serde_json::json!({"manifests": [
            {"digest": d("5"), "platform": {"architecture": "amd64", "os": "linux"}},
            {"digest": d("6"), "platform": {"architecture": "wasm", "os": "wasip2"}},
        ]});
        assert_eq!(
            next(index.to_string().as_bytes()),
            Ok(Next::Manifest(Pin("6".repeat(64))))
        );
    }

    #[test]
    fn challenges_and_ecr_hosts_are_read() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            [
                (
                    "realm".to_string(),
                    "https://auth.example/token".to_string()
                ),
                ("service".to_string(), "registry.example".to_string()),
                ("scope".to_string(), "repository:a/b:pull,push".to_string()),
            ]
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some("cn-north-1")
        );
        assert!(!is_ecr("ghcr.io"));
        assert!(!is_ecr("12345.dkr.ecr.eu-west-1.amazonaws.com"));
    }
}
