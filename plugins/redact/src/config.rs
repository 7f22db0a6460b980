//! The operator's config (`RedactConfig`, whose JSON Schema `info()` reports) and its
//! validation into a ready [`Redactor`](crate::Redactor): regexes compiled, salt checked.

use crate::detect::{Detectors, Kind};
use crate::mask::Mask;
use wasm_router_sdk::config::{self, ConfigError, PluginConfig};

/// The redact filter's config.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Record fields to scan, as dotted paths (`log`, `request.headers`) or lists of keys
    /// (`["labels", "app.kubernetes.io/name"]`). A field holding a map or array is scanned
    /// all the way down. Empty (the default): every string value of the record.
    #[serde(default)]
    pub fields: Vec<FieldPath>,
    /// Which built-in detectors run (all of them by default).
    #[serde(default)]
    pub detectors: DetectorSwitches,
    /// How a match is masked.
    #[serde(default)]
    pub mask: MaskConfig,
    /// Your own patterns (Rust `regex` syntax), each with a name used in the mask and the
    /// metrics. With a capture group named `value`, only that group is masked (e.g.
    /// `password=(?P<value>\S+)`). Patterns match bytes in ASCII mode: `\w`, `\d`, `\s`,
    /// `\b` and `(?i)` are ASCII-only and `.` matches any byte; non-ASCII text in a pattern
    /// matches itself exactly; Unicode classes (`\p{…}`) are not available.
    #[serde(default)]
    pub custom_patterns: Vec<CustomPattern>,
}

/// A record field: a dotted path or a list of keys.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldPath {
    /// `a.b.c`.
    Dotted(String),
    /// `["a", "b.c"]`, for keys that contain dots.
    Keys(Vec<String>),
}

impl FieldPath {
    /// The keys, outermost first.
    pub fn keys(&self) -> Vec<String> {
        match self {
            FieldPath::Dotted(path) => path.split('.').map(str::to_owned).collect(),
            FieldPath::Keys(keys) => keys.clone(),
        }
    }
}

fn enabled() -> bool {
    true
}

/// On/off switches of the built-in detectors.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectorSwitches {
    /// Email addresses (also with `%40` for `@`, as in URLs).
    #[serde(default = "enabled")]
    pub email: bool,
    /// Payment card numbers: 13–19 digits, optionally grouped by spaces or dashes, starting
    /// with 2–6 (the card networks' ranges) and passing the Luhn check.
    #[serde(default = "enabled")]
    pub credit_card: bool,
    /// US social security numbers written `123-45-6789` (not area 000, 666 or 900–999, not
    /// group 00, not serial 0000).
    #[serde(default = "enabled")]
    pub ssn: bool,
    /// IPv4 addresses (not inside longer dotted numbers such as OIDs or versions).
    #[serde(default = "enabled")]
    pub ipv4: bool,
    /// IPv6 addresses (full, compressed, or with an embedded IPv4 tail).
    #[serde(default = "enabled")]
    pub ipv6: bool,
    /// AWS access key ids: `AKIA`, `ASIA`, `ABIA` or `ACCA` followed by 16 upper-case letters
    /// or digits.
    #[serde(default = "enabled")]
    pub aws_access_key: bool,
    /// AWS secret access keys: 40 base64 characters either after a key-ish name
    /// (`aws_secret_access_key`, `SecretAccessKey`, `secret_key`, … then `=`, `:` or quotes),
    /// or standing alone with upper case, lower case and digits in it and not part of a
    /// longer token or a path.
    #[serde(default = "enabled")]
    pub aws_secret_key: bool,
    /// The token after `Bearer ` (the word itself is kept).
    #[serde(default = "enabled")]
    pub bearer_token: bool,
    /// JSON Web Tokens (`eyJ….eyJ….…`).
    #[serde(default = "enabled")]
    pub jwt: bool,
}

impl Default for DetectorSwitches {
    fn default() -> Self {
        DetectorSwitches {
            email: true,
            credit_card: true,
            ssn: true,
            ipv4: true,
            ipv6: true,
            aws_access_key: true,
            aws_secret_key: true,
            bearer_token: true,
            jwt: true,
        }
    }
}

impl DetectorSwitches {
    fn kinds(&self) -> Vec<Kind> {
        let switches = [
            (self.email, Kind::Email),
            (self.credit_card, Kind::CreditCard),
            (self.ssn, Kind::Ssn),
            (self.ipv4, Kind::Ipv4),
            (self.ipv6, Kind::Ipv6),
            (self.aws_access_key, Kind::AwsAccessKey),
            (self.aws_secret_key, Kind::AwsSecretKey),
            (self.bearer_token, Kind::BearerToken),
            (self.jwt, Kind::Jwt),
        ];
        switches
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, kind)| kind)
            .collect()
    }
}

/// How matches are masked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    /// `[REDACTED:<detector>]`.
    #[default]
    Fixed,
    /// Every letter and digit but the last four becomes `*`; separators stay
    /// (`**** **** **** 1111`).
    KeepLast4,
    /// `[REDACTED:<detector>:<hex>]`: the start of the SHA-256 of salt + match, so equal
    /// values stay joinable without being readable.
    Hash,
}

/// The `mask` section.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// `fixed` (default), `keep_last4` or `hash`.
    #[serde(default)]
    pub style: MaskStyle,
    /// The salt of the `hash` style (required with it; keep it secret and stable: changing it
    /// changes every hash).
    #[serde(default)]
    pub salt: Option<String>,
    /// Hex characters of the hash to keep (4–64, default 16).
    #[serde(default)]
    pub hash_length: Option<usize>,
}

/// One user pattern.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// Its name, used in the mask (`[REDACTED:<name>]`): letters, digits, `_` and `-`.
    pub name: String,
    /// A Rust `regex` pattern.
    pub pattern: String,
}

/// The largest compiled size accepted for one user pattern.
const CUSTOM_PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl PluginConfig for crate::Redactor {
    fn from_json(json: &str) -> Result<Self, Vec<ConfigError>> {
        let raw: RedactConfig = config::parse(json)?;
        build(raw)
    }

    fn json_schema() -> serde_json::Value {
        config::schema::<RedactConfig>()
    }
}

/// Validates the config into a [`Redactor`](crate::Redactor), reporting every problem.
pub fn build(raw: RedactConfig) -> Result<crate::Redactor, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mask = match raw.mask.style {
        MaskStyle::Fixed => Mask::Fixed,
        MaskStyle::KeepLast4 => Mask::KeepLast4,
        MaskStyle::Hash => {
            let length = raw.mask.hash_length.unwrap_or(16);
            if !(4..=64).contains(&length) {
                errors.push(ConfigError::new(
                    "/mask/hash_length",
                    format!("{length} is out of range: use 4 to 64"),
                ));
            }
            match raw.mask.salt.as_deref() {
                Some(salt) if !salt.is_empty() => Mask::Hash {
                    salt: salt.as_bytes().to_vec(),
                    length: length.clamp(4, 64),
                },
                _ => {
                    errors.push(ConfigError::new(
                        "/mask/salt",
                        "the hash style needs a salt: set mask.salt to a long random string (and keep it stable)",
                    ));
                    Mask::Fixed
                }
            }
        }
    };
    if raw.mask.style != MaskStyle::Hash && raw.mask.salt.is_some() {
        errors.push(ConfigError::new(
            "/mask/salt",
            "a salt only applies to style \"hash\": remove it or set the style",
        ));
    }
    let mut custom = Vec::new();
    for (index, pattern) in raw.custom_patterns.iter().enumerate() {
        if pattern.name.is_empty()
            || !pattern
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(ConfigError::at(
                ["custom_patterns", &index.to_string(), "name"],
                format!("{:?}: use letters, digits, `_` and `-`", pattern.name),
            ));
        }
        match regex_ascii::bytes::RegexBuilder::new(&pattern.pattern)
            .unicode(false)
            .size_limit(CUSTOM_PATTERN_SIZE_LIMIT)
            .build()
        {
            Ok(regex) => {
                if regex.is_match(b"") {
                    errors.push(ConfigError::at(
                        ["custom_patterns", &index.to_string(), "pattern"],
                        "the pattern matches the empty string, so it would mask nothing useful: make it require at least one character",
                    ));
                }
                custom.push((pattern.name.clone(), regex));
            }
            Err(error) => errors.push(ConfigError::at(
                ["custom_patterns", &index.to_string(), "pattern"],
                format!("not a valid regular expression: {error}"),
            )),
        }
    }
    let mut fields = Vec::new();
    for (index, field) in raw.fields.iter().enumerate() {
        let keys = field.keys();
        if keys.is_empty() || keys.iter().any(String::is_empty) {
            errors.push(ConfigError::at(
                ["fields", &index.to_string()],
                "an empty key: write `log` or `request.headers`",
            ));
        }
        fields.push(keys);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let detectors = Detectors::new(&raw.detectors.kinds(), custom);
    Ok(crate::Redactor {
        fields,
        detectors,
        mask,
    })
}
