//! What the three AWS outputs (`cloudwatch_logs`, `firehose`, `s3`) share: the SDK
//! configuration (credential chain, `role_arn` assume-role, custom endpoints), the retry
//! classification of SDK errors, typed telemetry, record → JSON rendering with the Fluent Bit
//! options (`log_key`, `data_keys`, `time_key`, …), strftime, the ECS task metadata used in
//! templates, and the bookkeeping that lets an output resume a half-delivered batch.

pub mod connection;
pub mod ecs;
pub mod flb_value;
pub mod progress;
pub mod record;
pub mod retry;
pub mod telemetry;
pub mod time_format;

pub use connection::{AwsConnectionConfig, AwsError, AwsOverrides};
pub use ecs::EcsMetadata;
pub use progress::BatchFingerprint;
pub use record::{RecordRenderer, RenderError};
pub use retry::{ErrorClass, SdkFailure};

/// Config validation of the AWS outputs (pure; called from [`crate::config::Config::validate`]).
/// Each problem is pushed as `outputs[i]: …`.
pub fn validate_output(
    key: &str,
    output: &crate::config::OutputConfig,
    problems: &mut Vec<String>,
) {
    use crate::config::OutputConfig;
    let result = match output {
        OutputConfig::CloudwatchLogs(c) => c.validate().map(drop),
        OutputConfig::Firehose(c) => c.validate().map(drop),
        OutputConfig::S3(c) => c.validate(crate::config::output_id(output)).map(drop),
        _ => Ok(()),
    };
    if let Err(text) = result {
        problems.extend(
            text.lines()
                .map(|line| format!("{key} ({}): {line}", output.type_name())),
        );
    }
}
