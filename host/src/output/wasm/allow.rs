//! `allow_hosts`: the destinations an output plugin may reach, granted by the operator.
//!
//! Each entry is `scheme://host[:port][/path]`: a request is allowed when its URL has the same
//! scheme, the same host (ASCII case-insensitive; `*.example.com` matches every subdomain of
//! `example.com`, not `example.com` itself), the same port (the scheme's default when absent)
//! and, if the entry has a path, a path under it (on a segment boundary). URLs are compared
//! parsed, never as text, so `https://api.example.com.evil.net` or
//! `https://api.example.com@evil.net` do not pass for `https://api.example.com`.
//! Checked before any connection is made (reference wasm-plugin-hosts.md §3.4).
//!
//! Paths are compared normalised (RFC 3986 §6.2.2): percent-encoded unreserved characters
//! decoded (`%61pi` is `api`, `%2e%2E` is `..`), then dot segments removed (§5.2.4), so
//! `/api/../admin` and `/api/%2e%2e/admin` are `/admin` and escape a grant of `/api/`. What is
//! sent is that normalised URL ([`AllowList::permit`]), so the destination sees the path that
//! was checked. A path with an encoded `/` or `\` (`%2F`, `%5C`), a raw `\` or a broken `%`
//! escape is refused where the grant has a path: servers disagree on what those mean, so no
//! path grant can be said to cover them (a whole-host grant covers them, sent as written).

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

    /// Whether a request to `uri` may be sent (see [`AllowList::permit`]).
    pub fn allows(&self, uri: &Uri) -> bool {
        self.permit(uri).is_some()
    }

    /// The URL to send for a request to `uri`: `uri` with its path normalised, when that path
    /// is under a grant for its scheme, host and port; `None` when no grant covers it.
    pub fn permit(&self, uri: &Uri) -> Option<Uri> {
        let (https, host, port) = target(uri)?;
        let normal = normalised_path(uri.path());
        let granted = self.entries.iter().any(|e| {
            e.https == https
                && e.port == port
                && match &e.host {
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomains(suffix) => host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|sub| !sub.is_empty()),
                }
                && (e.path.is_empty() || normal.as_deref().is_some_and(|p| path_under(p, &e.path)))
        });
        if !granted {
            return None;
        }
        // A whole-host grant covers any path, even one it cannot normalise: sent as written.
        let Some(path) = normal else {
            return Some(uri.clone());
        };
        if path == uri.path() {
            return Some(uri.clone());
        }
        let path_and_query = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(path_and_query.parse().ok()?);
        Uri::from_parts(parts).ok()
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

/// `path` in normal form (RFC 3986 §6.2.2): percent-encoded unreserved characters decoded,
/// other escapes in upper case, dot segments removed. `None` for a path no path grant can
/// cover: an encoded `/` or `\`, a raw `\`, or a `%` not followed by two hex digits.
fn normalised_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return None,
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                let byte = u8::from_str_radix(hex, 16).ok()?;
                match byte {
                    b'/' | b'\\' => return None,
                    b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                        decoded.push(b as char)
                    }
                    b => decoded.push_str(&format!("%{b:02X}")),
                }
                i += 3;
            }
            _ => {
                // Everything else in an `http::Uri` path is ASCII; copy it whole.
                let run = bytes[i..]
                    .iter()
                    .position(|&b| b == b'%' || b == b'\\')
                    .map_or(bytes.len(), |n| i + n);
                decoded.push_str(&path[i..run]);
                i = run;
            }
        }
    }
    Some(remove_dot_segments(&decoded))
}

/// RFC 3986 §5.2.4, over whole segments: `.` is dropped, `..` drops the segment before it
/// (never above the root), and a path ending in either keeps its trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let absolute = path.starts_with('/');
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate().skip(usize::from(absolute)) {
        match *segment {
            "." | ".." => {
                if *segment == ".." && !output.is_empty() {
                    output.pop();
                }
                if n == last {
                    output.push("");
                }
            }
            s => output.push(s),
        }
    }
    let joined = output.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
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
    let path = normalised_path(uri.path())
        .ok_or_else(|| {
            bad("has an encoded `/` or `\\`, a `\\` or a broken `%` escape in its path")
        })?
        .trim_end_matches('/')
        .to_string();
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
    fn paths_are_matched_normalised_and_sent_as_matched() {
        let l = list(&["https://example.com/api/"]);
        let sent = |url: &str| l.permit(&url.parse().unwrap()).map(|u| u.to_string());
        for (url, expected) in [
            // Escapes of the grant, plain and encoded.
            ("https://example.com/api/../admin", None),
            ("https://example.com/api/%2e%2e/admin", None),
            ("https://example.com/api/%2E%2E/admin", None),
            ("https://example.com/api/.%2e/admin", None),
            ("https://example.com/api/./../admin", None),
            ("https://example.com/api/v2/../../admin", None),
            ("https://example.com/api/..", None),
            ("https://example.com/api/../api2/x", None),
            ("https://example.com/api/../../../api/../admin", None),
            // Separators that servers read differently: refused, never matched literally.
            ("https://example.com/api/..%2Fadmin", None),
            ("https://example.com/api/%2f..%2fadmin", None),
            ("https://example.com/api/..%5Cadmin", None),
            ("https://example.com/api/%5c", None),
            ("https://example.com/api/%zz", None),
            ("https://example.com/api/%4", None),
            // Inside the grant: sent normalised, query kept.
            (
                "https://example.com/api/v2/logs",
                Some("https://example.com/api/v2/logs"),
            ),
            (
                "https://example.com/api/v2/../logs?x=1",
                Some("https://example.com/api/logs?x=1"),
            ),
            (
                "https://example.com/api/./v2/./logs",
                Some("https://example.com/api/v2/logs"),
            ),
            (
                "https://example.com/x/../api/logs",
                Some("https://example.com/api/logs"),
            ),
            (
                "https://example.com/%61pi/%7Euser",
                Some("https://example.com/api/~user"),
            ),
            (
                "https://example.com/api/a%2db%3f",
                Some("https://example.com/api/a-b%3F"),
            ),
            (
                "https://example.com/api/v2/..",
                Some("https://example.com/api/"),
            ),
            // Not dot segments: ordinary names.
            (
                "https://example.com/api/..x/.y",
                Some("https://example.com/api/..x/.y"),
            ),
        ] {
            assert_eq!(sent(url).as_deref(), expected, "{url}");
        }
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        assert_eq!(remove_dot_segments("/../a/./"), "/a/");
        let whole_host = list(&["https://example.com"]);
        for url in [
            "https://example.com/projects/group%2Fname",
            "https://example.com/a%zz",
        ] {
            assert_eq!(
                whole_host
                    .permit(&url.parse().unwrap())
                    .map(|u| u.to_string()),
                Some(url.to_string())
            );
        }
        assert_eq!(
            whole_host
                .permit(&"https://example.com/a/../b".parse().unwrap())
                .map(|u| u.to_string()),
            Some("https://example.com/b".to_string())
        );
        let grant_with_dots = list(&["https://example.com/v1/../api/"]);
        assert!(allows(&grant_with_dots, "https://example.com/api/x"));
        assert!(!allows(&grant_with_dots, "https://example.com/v1/x"));
        assert!(AllowList::parse(&["https://example.com/a%2Fb".into()]).is_err());
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
