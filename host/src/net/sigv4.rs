//! The `aws_sigv4` grant of a WASM output: the router signs every request of the output with
//! AWS Signature Version 4, after compression, with credentials from the AWS SDK's default
//! chain (and an optional role assumed on top of it), exactly as the AWS outputs get theirs
//! ([`crate::net::aws_connection`]). The plugin never sees the credentials.
//!
//! ```toml
//! aws_sigv4 = { service = "es", region = "eu-west-1", role_arn = "arn:aws:iam::123456789012:role/logs" }
//! ```
//!
//! Each send is signed again (a retried request gets a fresh date); the signed headers are
//! `host`, `x-amz-date`, `x-amz-content-sha256` (the SHA-256 of the body as sent, which Amazon
//! OpenSearch Serverless requires and Fluent Bit always sends), `x-amz-security-token` for
//! temporary credentials, and every header of the request.

use super::http_client::PreparedRequest;
use crate::net::aws_connection::{AwsConnectionConfig, AwsOverrides};
use aws_sdk_s3::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{self, HeaderValue};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// Temporary credentials are refreshed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// `aws_sigv4 = { … }` of a `type = "wasm"` output.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4Config {
    /// The signing name of the service: `es` (Amazon OpenSearch Service), `aoss` (OpenSearch
    /// Serverless), `execute-api`, …
    pub service: String,
    /// The region of the endpoint, e.g. `us-east-1`.
    pub region: String,
    /// A role to assume with the chain's credentials.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id for `role_arn`.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Where to call AssumeRole (default: the regional STS endpoint).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// The shared-config profile of the credential chain.
    #[serde(default)]
    pub profile: Option<String>,
}

impl AwsSigV4Config {
    fn connection(&self) -> AwsConnectionConfig {
        AwsConnectionConfig {
            region: self.region.clone(),
            endpoint: None,
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            profile: self.profile.clone(),
        }
    }

    /// Check the grant without touching the network; problems are prefixed with `key`.
    pub fn validate(&self, key: &str) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let service = self.service.trim();
        if service.is_empty() || !service.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(format!(
                "{key}.aws_sigv4.service {:?} is not a signing name; use the service's, e.g. service = \"es\" (Amazon OpenSearch Service) or \"aoss\" (OpenSearch Serverless)",
                self.service
            ));
        }
        if let Err(e) = self.connection().validate() {
            problems.push(format!("{key}.aws_sigv4: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Signs requests for one output; credentials are resolved on the first request and cached
/// until shortly before they expire.
pub struct Signer {
    config: AwsSigV4Config,
    overrides: AwsOverrides,
    provider: tokio::sync::OnceCell<SharedCredentialsProvider>,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("service", &self.config.service)
            .field("region", &self.config.region)
            .field("role_arn", &self.config.role_arn)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for a validated `config`; `overrides` replaces the default chain (tests).
    pub fn new(config: AwsSigV4Config, overrides: AwsOverrides) -> Signer {
        Signer {
            config,
            overrides,
            provider: tokio::sync::OnceCell::new(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The grant as configured.
    pub fn config(&self) -> &AwsSigV4Config {
        &self.config
    }

    async fn credentials(&self) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expiry().is_none_or(|at| {
                at.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
            })
        {
            return Ok(c.clone());
        }
        let provider = self
            .provider
            .get_or_try_init(|| async {
                let sdk = self
                    .config
                    .connection()
                    .sdk_config(&self.overrides)
                    .await
                    .map_err(|e| e.to_string())?;
                sdk.credentials_provider()
                    .ok_or_else(|| "the AWS SDK found no credential provider".to_string())
            })
            .await?;
        let fresh = provider.provide_credentials().await.map_err(|e| {
            format!(
                "no AWS credentials ({}); give the task a role, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                crate::ops::logging::error_chain(&e)
            )
        })?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// `request` with the SigV4 headers added (the `Host` header set to what is signed).
    pub async fn sign(&self, request: &PreparedRequest) -> Result<PreparedRequest, String> {
        let credentials = self.credentials().await?;
        sign_with(&self.config, &credentials, request, SystemTime::now())
    }
}

/// The `Host` header hyper would send for `uri`: the port only when it is not the scheme's.
fn host_header(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_string(),
    })
}

/// Sign `request` at `time`.
fn sign_with(
    config: &AwsSigV4Config,
    credentials: &Credentials,
    request: &PreparedRequest,
    time: SystemTime,
) -> Result<PreparedRequest, String> {
    let mut headers = request.headers.clone();
    let host = host_header(&request.uri).ok_or("the URL has no host")?;
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
    );
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(config.region.trim())
        .name(config.service.trim())
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let text_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let uri = request.uri.to_string();
    let signable = SignableRequest::new(
        request.method.as_str(),
        uri.as_str(),
        text_headers.into_iter(),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| crate::ops::logging::error_chain(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| crate::ops::logging::error_chain(&e))?
        .into_parts();
    let (signed, _) = instructions.into_parts();
    for h in signed {
        let mut value = HeaderValue::from_str(h.value()).map_err(|e| e.to_string())?;
        value.set_sensitive(h.sensitive() || h.name() == "authorization");
        headers.insert(h.name(), value);
    }
    Ok(PreparedRequest {
        id: request.id,
        method: request.method.clone(),
        uri: request.uri.clone(),
        headers,
        body: request.body.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Method};

    fn config() -> AwsSigV4Config {
        AwsSigV4Config {
            service: "es".into(),
            region: "us-east-1".into(),
            role_arn: None,
            external_id: None,
            sts_endpoint: None,
            profile: None,
        }
    }

    #[test]
    fn the_grant_is_checked() {
        assert_eq!(config().validate("outputs[0]"), Ok(()));
        let bad = AwsSigV4Config {
            service: " ".into(),
            region: String::new(),
            external_id: Some("x".into()),
            ..config()
        };
        let problems = bad.validate("outputs[0]").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("outputs[0].aws_sigv4.service"),
            "{problems:?}"
        );
        assert!(problems[1].contains("region"), "{problems:?}");
    }

    #[test]
    fn hosts_carry_only_non_default_ports() {
        let h = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(h("https://search.example.com/_bulk"), "search.example.com");
        assert_eq!(
            h("https://search.example.com:443/_bulk"),
            "search.example.com"
        );
        assert_eq!(h("http://127.0.0.1:9200/_bulk"), "127.0.0.1:9200");
    }

    /// The signed headers are the ones Fluent Bit's signer sends; the signature itself is
    /// checked against botocore's signer in host/tests/opensearch_output.rs.
    #[test]
    fn signatures_match_the_sdk_signer_and_carry_the_payload_hash() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("token".into()),
            None,
            "test",
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-ndjson"),
        );
        let request = PreparedRequest {
            id: 1,
            method: Method::POST,
            uri: "http://127.0.0.1:9200/_bulk".parse().unwrap(),
            headers,
            body: Bytes::from_static(b"{}\n"),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let signed = sign_with(&config(), &credentials, &request, at).unwrap();
        let h = |name: &str| signed.headers[name].to_str().unwrap().to_string();
        assert_eq!(h("host"), "127.0.0.1:9200");
        assert_eq!(h("x-amz-date"), "20150830T123600Z");
        assert_eq!(h("x-amz-security-token"), "token");
        assert_eq!(
            h("x-amz-content-sha256"),
            "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
        );
        let auth = h("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/es/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="),
            "{auth}"
        );
        assert!(signed.headers["authorization"].is_sensitive());
        // Signing is deterministic for one time: the same request signs the same.
        let again = sign_with(&config(), &credentials, &request, at).unwrap();
        assert_eq!(
            again.headers["authorization"],
            signed.headers["authorization"]
        );
    }
}
