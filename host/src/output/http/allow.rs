//! `allow_hosts`: the destinations an output plugin may reach, granted by the operator.
//!
//! Each entry is `scheme://host[:port][/path]`: a request is allowed when its URL has the same
//! scheme, the same host (ASCII case-insensitive; `*.example.com` matches every subdomain of
//! `example.com`, not `example.com` itself), the same port (the scheme's default when absent)
//! and, if the entry has a path, a path under it (on a segment boundary). URLs are compared
//! parsed, never as text, so `https://api.example.com.evil.net` or
//! `https://api.example.com@evil.net` do not pass for `https://api.example.com`.
//! Checked before any connection is made (reference wasm-plugin-hosts.md §3.4).

use http::Uri;

/// One granted destination.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedPrefix {
    https: bool,
    host: HostPattern,
    port: u16,
    /// `""` for any path, else a prefix without a trailing `/`.
    path: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`: any host ending in `.suffix`.
    Subdomains(String),
}

/// The destinations one output may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowedPrefix>,
}

/// The scheme, host and port of a URL, for messages.
pub fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("?");
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

impl AllowList {
    /// Parse the `allow_hosts` entries; an error names the entry and shows the expected form.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let entries = entries
            .iter()
            .map(|e| parse_entry(e))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a request to `uri` may be sent.
    pub fn allows(&self, uri: &Uri) -> bool {
        let Some((https, host, port)) = target(uri) else {
            return false;
        };
        let path = uri.path();
        self.entries.iter().any(|e| {
            e.https == https
                && e.port == port
                && match &e.host {
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomains(suffix) => host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|sub| !sub.is_empty()),
                }
                && path_under(path, &e.path)
        })
    }

    /// Whether the URL prefix `url` (e.g. a plugin's requested host) is covered by a grant.
    pub fn covers(&self, url: &str) -> bool {
        url.parse::<Uri>().is_ok_and(|u| self.allows(&u))
    }
}

/// `(https, lowercase host, effective port)` of an absolute http(s) URL.
fn target(uri: &Uri) -> Option<(bool, String, u16)> {
    let https = match uri.scheme_str()? {
        s if s.eq_ignore_ascii_case("https") => true,
        s if s.eq_ignore_ascii_case("http") => false,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Some((https, host, port))
}

fn path_under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn parse_entry(entry: &str) -> Result<AllowedPrefix, String> {
    let bad = |why: &str| {
        format!(
            "allow_hosts entry {entry:?} {why}; write it as \"https://host[:port][/path]\", e.g. \"https://http-intake.logs.datadoghq.com\""
        )
    };
    let (wildcard, text) = match entry.split_once("://*.") {
        Some((scheme, rest)) => (true, format!("{scheme}://wildcard.{rest}")),
        None => (false, entry.to_string()),
    };
    let uri: Uri = text
        .parse()
        .map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if uri.query().is_some() {
        return Err(bad("has a query string"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("has user info"));
    }
    let (https, host, port) =
        target(&uri).ok_or_else(|| bad("is not an http:// or https:// URL with a host"))?;
    let host = if wildcard {
        let suffix = host.strip_prefix("wildcard.").unwrap_or(&host);
        if !suffix.contains('.') {
            return Err(bad("has a wildcard over a top-level domain"));
        }
        HostPattern::Subdomains(format!(".{suffix}"))
    } else {
        if host.contains('*') {
            return Err(bad("has a `*` that is not a leading `*.`"));
        }
        HostPattern::Exact(host)
    };
    let path = uri.path().trim_end_matches('/').to_string();
    Ok(AllowedPrefix {
        https,
        host,
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(l: &AllowList, url: &str) -> bool {
        l.allows(&url.parse().unwrap())
    }

    #[test]
    fn scheme_host_and_port_must_match_exactly() {
        let l = list(&[
            "https://http-intake.logs.datadoghq.com",
            "http://127.0.0.1:8080",
        ]);
        assert!(allows(
            &l,
            "https://http-intake.logs.datadoghq.com/api/v2/logs"
        ));
        assert!(allows(
            &l,
            "https://HTTP-INTAKE.logs.datadoghq.com:443/api/v2/logs"
        ));
        assert!(allows(&l, "http://127.0.0.1:8080/x?y=1"));
        assert!(!allows(
            &l,
            "http://http-intake.logs.datadoghq.com/api/v2/logs"
        ));
        assert!(!allows(&l, "https://http-intake.logs.datadoghq.com:8443/"));
        assert!(!allows(
            &l,
            "https://http-intake.logs.datadoghq.com.evil.net/"
        ));
        assert!(!allows(
            &l,
            "https://http-intake.logs.datadoghq.com@evil.net/"
        ));
        assert!(!allows(&l, "http://127.0.0.1/"));
        assert!(!allows(&l, "http://127.0.0.1:8081/"));
        assert!(!allows(&l, "/relative"));
        assert!(!allows(&l, "ftp://127.0.0.1:8080/"));
    }

    #[test]
    fn paths_match_on_segment_boundaries() {
        let l = list(&["https://example.com/api/"]);
        assert!(allows(&l, "https://example.com/api"));
        assert!(allows(&l, "https://example.com/api/v2/logs"));
        assert!(!allows(&l, "https://example.com/apix"));
        assert!(!allows(&l, "https://example.com/"));
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        let l = list(&["https://*.datadoghq.com"]);
        assert!(allows(&l, "https://http-intake.logs.datadoghq.com/x"));
        assert!(!allows(&l, "https://datadoghq.com/x"));
        assert!(!allows(&l, "https://evildatadoghq.com/x"));
        assert!(AllowList::parse(&["https://*.com".into()]).is_err());
    }

    #[test]
    fn bad_entries_are_explained() {
        for bad in [
            "datadoghq.com",
            "ftp://x.com",
            "https://a@b.com",
            "https://x.com/?q",
            "https://a*b.com",
        ] {
            let e = AllowList::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(bad) && e.contains("https://host"), "{e}");
        }
    }
}
