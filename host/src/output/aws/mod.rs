//! What the AWS outputs (`cloudwatch_logs`, `firehose`, `kinesis_streams`, `s3`) share: the SDK
//! configuration (credential chain, `role_arn` assume-role, custom endpoints), the retry
//! classification of SDK errors, typed telemetry, record → JSON rendering with the Fluent Bit
//! options (`log_key`, `data_keys`, `time_key`, …), the ECS task metadata used in templates.
//! (Their strftime is [`crate::time::strftime`].)

pub mod ecs;
pub mod error_class;
pub mod flb_value;
pub mod put_records;
pub mod record;
pub mod telemetry;

pub use crate::net::aws_connection::{AwsConnectionConfig, AwsError, AwsOverrides};
pub use ecs::EcsMetadata;
pub use error_class::{ErrorClass, SdkFailure};
pub use record::{RecordRenderer, RenderError};

/// Add the problems of an AWS output's validation (`text`, one per line): each one at the key
/// it names first (`outputs[1].part_size: …`), so a classic config reports it at that key's
/// `file:line`, else as `outputs[i] (type): …`.
pub fn report_problems(
    key: &str,
    type_name: &str,
    result: Result<(), String>,
    problems: &mut Vec<String>,
) {
    if let Err(text) = result {
        problems.extend(text.lines().map(|line| {
            match line.strip_prefix('`').and_then(|rest| rest.split_once('`')) {
                Some((name, _)) => format!("{key}.{name}: {line}"),
                None => format!("{key} ({type_name}): {line}"),
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::{OutputConfig, parse};

    const INPUT: &str = "[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n";

    #[test]
    fn fluent_bit_type_names_are_accepted() {
        let text = format!(
            "{INPUT}[[outputs]]\ntype = \"cloudwatch\"\nmatch = \"*\"\nregion = \"us-east-1\"\nlog_group_name = \"g\"\nlog_stream_prefix = \"p-\"\n\
             [[outputs]]\ntype = \"kinesis_firehose\"\nmatch = \"*\"\nregion = \"us-east-1\"\ndelivery_stream = \"d\"\n\
             [[outputs]]\ntype = \"s3\"\nmatch = \"*\"\nbucket = \"b\"\n"
        );
        let config = parse(&text, "router.toml").unwrap();
        let types: Vec<_> = config.outputs.iter().map(OutputConfig::type_name).collect();
        assert_eq!(types, ["cloudwatch_logs", "firehose", "s3"]);
    }

    #[test]
    fn validation_names_the_output_the_key_and_the_fix() {
        let text = format!(
            "{INPUT}[[outputs]]\ntype = \"cloudwatch_logs\"\nmatch = \"*\"\nlog_stream_name = \"s\"\n\
             [[outputs]]\ntype = \"s3\"\nmatch = \"*\"\nbucket = \"b\"\ns3_key_format = \"no-slash\"\n"
        );
        let e = parse(&text, "router.toml").unwrap_err().to_string();
        assert!(e.contains("outputs[0].region: `region` is required"), "{e}");
        assert!(
            e.contains("outputs[0].log_group_name: `log_group_name` is required"),
            "{e}"
        );
        assert!(
            e.contains("outputs[1].s3_key_format: `s3_key_format` must start with '/'"),
            "{e}"
        );
    }
}
