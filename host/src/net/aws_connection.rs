//! The SDK configuration of one AWS output: region, the standard credential chain
//! (environment → shared config/profile → web identity → ECS task role → EC2 IMDS), an
//! optional `role_arn` assumed on top of it (with `external_id`, through `sts_endpoint`), and an
//! optional custom `endpoint`, as Fluent Bit's AWS outputs take them.
//!
//! The SDK's own retries are off: every retry decision is made by the outputs
//! ([`super::error_class`]) so that an accepted batch is never sent again and every retry is counted.

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::SharedCredentialsProvider;
use std::time::Duration;

/// How long connecting to an AWS endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one API call attempt may take, response included (a 5 GiB-at-most S3 part is the
/// largest body; parts are normally `upload_chunk_size`).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// The session name used when assuming `role_arn` (visible in the target account's CloudTrail).
pub const ASSUME_ROLE_SESSION_NAME: &str = "wasm-router";

/// Connection options every AWS output accepts (Fluent Bit's names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConnectionConfig {
    /// `region`.
    pub region: String,
    /// `endpoint`: a URL (`http://127.0.0.1:4566`) or a host name (`https://` is assumed).
    pub endpoint: Option<String>,
    /// `role_arn`: assume this role with the chain's credentials.
    pub role_arn: Option<String>,
    /// `external_id` for `role_arn`.
    pub external_id: Option<String>,
    /// `sts_endpoint`: where to call AssumeRole (default: the regional STS endpoint).
    pub sts_endpoint: Option<String>,
    /// `profile`: the shared-config profile of the credential chain.
    pub profile: Option<String>,
}

/// Declares the config struct of an AWS output: its own keys as written, then the connection
/// keys every AWS output takes with Fluent Bit's names (`region`, `endpoint`, `role_arn`,
/// `external_id`, `sts_endpoint`, `profile`), and `connection()`, which makes them an
/// [`AwsConnectionConfig`]. One declaration for the four outputs (a `#[serde(flatten)]` struct
/// would not work with `deny_unknown_fields`).
macro_rules! aws_output_config {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            /// AWS region (required, except by `s3`: `us-east-1`).
            #[serde(default)]
            pub region: Option<String>,
            /// A custom endpoint of the service: a URL, or a host name (`https://` is assumed).
            #[serde(default)]
            pub endpoint: Option<String>,
            /// Assume this role for every call.
            #[serde(default)]
            pub role_arn: Option<String>,
            /// External id for `role_arn`.
            #[serde(default)]
            pub external_id: Option<String>,
            /// STS endpoint for `role_arn`.
            #[serde(default)]
            pub sts_endpoint: Option<String>,
            /// The shared-config profile of the credential chain.
            #[serde(default)]
            pub profile: Option<String>,
        }

        impl $name {
            /// The connection keys, `region` defaulting to `default_region`.
            pub fn connection(
                &self,
                default_region: Option<&str>,
            ) -> $crate::net::aws_connection::AwsConnectionConfig {
                $crate::net::aws_connection::AwsConnectionConfig {
                    region: self
                        .region
                        .clone()
                        .or_else(|| default_region.map(str::to_string))
                        .unwrap_or_default(),
                    endpoint: self.endpoint.clone(),
                    role_arn: self.role_arn.clone(),
                    external_id: self.external_id.clone(),
                    sts_endpoint: self.sts_endpoint.clone(),
                    profile: self.profile.clone(),
                }
            }
        }
    };
}
pub(crate) use aws_output_config;

/// Programmatic overrides that have no config key (tests, embedding).
#[derive(Clone, Debug, Default)]
pub struct AwsOverrides {
    /// Use these credentials instead of the default chain (`role_arn` is still assumed on top).
    pub credentials: Option<SharedCredentialsProvider>,
}

impl AwsOverrides {
    /// Static credentials, e.g. the dummy ones a local AWS API server accepts.
    pub fn static_credentials(access_key_id: &str, secret_access_key: &str) -> Self {
        let creds = aws_sdk_s3::config::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "static",
        );
        AwsOverrides {
            credentials: Some(SharedCredentialsProvider::new(creds)),
        }
    }
}

/// An AWS configuration problem found before anything is sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AwsError {
    /// `region` is empty.
    #[error("`region` is required, e.g. region = \"us-east-1\"")]
    MissingRegion,
    /// An endpoint that is not a usable URL.
    #[error(
        "`{key}` = {value:?} is not a URL; write it as \"https://host\" or \"http://127.0.0.1:4566\""
    )]
    BadEndpoint {
        /// `endpoint` or `sts_endpoint`.
        key: &'static str,
        /// What was given.
        value: String,
    },
    /// `external_id` without `role_arn`.
    #[error("`external_id` only applies with `role_arn`; set role_arn or remove external_id")]
    ExternalIdWithoutRole,
    /// A `role_arn` that is not an IAM role ARN.
    #[error(
        "`role_arn` = {0:?} is not a role ARN; it looks like arn:aws:iam::123456789012:role/name"
    )]
    BadRoleArn(String),
}

impl AwsConnectionConfig {
    /// Check the options without touching the network.
    pub fn validate(&self) -> Result<(), AwsError> {
        if self.region.trim().is_empty() {
            return Err(AwsError::MissingRegion);
        }
        if let Some(e) = &self.endpoint {
            endpoint_url("endpoint", e)?;
        }
        if let Some(e) = &self.sts_endpoint {
            endpoint_url("sts_endpoint", e)?;
        }
        if self.external_id.is_some() && self.role_arn.is_none() {
            return Err(AwsError::ExternalIdWithoutRole);
        }
        if let Some(arn) = &self.role_arn
            && !(arn.starts_with("arn:") && arn.contains(":role/"))
        {
            return Err(AwsError::BadRoleArn(arn.clone()));
        }
        Ok(())
    }

    /// The SDK configuration for this output. Credentials are resolved lazily, on the first
    /// call, so building never waits for IMDS or STS.
    pub async fn sdk_config(&self, overrides: &AwsOverrides) -> Result<SdkConfig, AwsError> {
        self.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .app_name(AppName::new("wasm-router").expect("a valid app name"));
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(credentials) = &overrides.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let base = loader.load().await;
        let mut config = base.clone().into_builder();
        if let Some(role_arn) = &self.role_arn {
            let mut sts = base.clone().into_builder();
            if let Some(sts_endpoint) = &self.sts_endpoint {
                sts.set_endpoint_url(Some(endpoint_url("sts_endpoint", sts_endpoint)?));
            }
            // Credential refreshes are rare and not data: let the SDK retry those itself.
            sts.set_retry_config(Some(RetryConfig::standard()));
            let mut role =
                AssumeRoleProvider::builder(role_arn).session_name(ASSUME_ROLE_SESSION_NAME);
            if let Some(external_id) = &self.external_id {
                role = role.external_id(external_id);
            }
            let provider = role.configure(&sts.build()).build().await;
            config.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
        }
        if let Some(endpoint) = &self.endpoint {
            config.set_endpoint_url(Some(endpoint_url("endpoint", endpoint)?));
        }
        Ok(config.build())
    }
}

/// `endpoint` as Fluent Bit takes it: a full URL, or a bare host (HTTPS).
pub fn endpoint_url(key: &'static str, value: &str) -> Result<String, AwsError> {
    let value = value.trim();
    let bad = || AwsError::BadEndpoint {
        key,
        value: value.to_string(),
    };
    let url = if value.contains("://") {
        value.to_string()
    } else {
        format!("https://{value}")
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AwsConnectionConfig {
        AwsConnectionConfig {
            region: "us-east-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_accept_urls_and_bare_hosts() {
        assert_eq!(
            endpoint_url("endpoint", "http://127.0.0.1:4566/").unwrap(),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            endpoint_url("endpoint", "logs.us-east-1.amazonaws.com").unwrap(),
            "https://logs.us-east-1.amazonaws.com"
        );
        assert!(matches!(
            endpoint_url("endpoint", "ftp://x"),
            Err(AwsError::BadEndpoint { .. })
        ));
        assert!(matches!(
            endpoint_url("sts_endpoint", "http://"),
            Err(AwsError::BadEndpoint {
                key: "sts_endpoint",
                ..
            })
        ));
    }

    #[test]
    fn validation_names_the_key_and_the_fix() {
        assert_eq!(
            AwsConnectionConfig::default().validate(),
            Err(AwsError::MissingRegion)
        );
        let c = AwsConnectionConfig {
            external_id: Some("x".into()),
            ..config()
        };
        assert_eq!(c.validate(), Err(AwsError::ExternalIdWithoutRole));
        let c = AwsConnectionConfig {
            role_arn: Some("role/x".into()),
            ..config()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("arn:aws:iam::")
        );
        let c = AwsConnectionConfig {
            role_arn: Some("arn:aws:iam::123456789012:role/logs".into()),
            external_id: Some("abc".into()),
            ..config()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[tokio::test]
    async fn sdk_config_sets_region_endpoint_and_no_sdk_retries() {
        let c = AwsConnectionConfig {
            endpoint: Some("http://127.0.0.1:1".into()),
            ..config()
        };
        let sdk = c
            .sdk_config(&AwsOverrides::static_credentials("a", "b"))
            .await
            .unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(1));
    }
}
