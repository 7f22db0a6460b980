//! The registry: every component type the config can name, one line each. The topology reads
//! `[[inputs]]`, `[[filters]]` and `[[outputs]]` tables into these enums (serde picks the
//! variant by `type`), then validates and builds through each kind's trait —
//! [`InputComponent`], [`FilterComponent`], [`OutputComponent`] — so no code outside a
//! component's own folder names its config type.
//!
//! Adding a component type is its folder (its config type, implementing its kind's trait)
//! plus one line below.

use crate::config::{Keyed, MatchKeys};
use crate::filter::FilterComponent;
use crate::input::InputComponent;
use crate::output::{OutputComponent, OutputKeys};

/// Declares one kind's enum of component types: `Variant(ConfigType) = "type" | "alias"`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub enum $name:ident => dyn $component:ident with $keys:ty {
            $( $(#[$vmeta:meta])* $variant:ident($config:ty) = $type_name:literal $(| $alias:literal)* ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "type")]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $type_name $(, alias = $alias)*)]
                $variant(Keyed<$keys, $config>),
            )*
        }

        impl $name {
            /// The `type` of this entry, as the registry spells it (aliases resolved).
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $type_name, )*
                }
            }

            /// The keys every entry of this kind has.
            pub fn keys(&self) -> &$keys {
                match self {
                    $( Self::$variant(c) => &c.keys, )*
                }
            }

            /// The component: its own config, its checks and its build.
            pub fn component(&self) -> &dyn $component {
                match self {
                    $( Self::$variant(c) => &c.options, )*
                }
            }
        }
    };
}

/// The keys every input has (none yet: each input names itself).
#[derive(Debug, Default, serde::Deserialize)]
pub struct InputKeys {}

impl crate::config::SharedKeys for InputKeys {
    const KEYS: &'static [&'static str] = &[];
}

registry! {
    /// One `[[inputs]]` entry.
    pub enum InputConfig => dyn InputComponent with InputKeys {
        /// The Fluentd forward protocol over TCP and/or a unix socket.
        Forward(crate::input::forward::ForwardInputConfig) = "forward",
        /// Records over plain TCP: JSON objects or text lines (Fluent Bit `tcp`).
        Tcp(crate::input::tcp::TcpInputConfig) = "tcp",
        /// A fixed record, generated (Fluent Bit `dummy`).
        Dummy(crate::input::dummy::DummyInputConfig) = "dummy",
        /// Lines of files, followed through rotation (Fluent Bit `tail`).
        Tail(crate::input::tail::TailInputConfig) = "tail",
        /// Records posted over HTTP: JSON or form bodies (Fluent Bit `http`).
        Http(crate::input::http::HttpInputConfig) = "http",
        /// The lines a command prints, on an interval or once (Fluent Bit `exec`).
        Exec(crate::input::exec::ExecInputConfig) = "exec",
    }
}

registry! {
    /// One `[[filters]]` entry.
    pub enum FilterConfig => dyn FilterComponent with MatchKeys {
        /// A WebAssembly filter plugin.
        Wasm(crate::plugin::config::WasmFilterConfig) = "wasm",
        /// Keep or drop events by regular expressions (Fluent Bit `grep`).
        Grep(crate::filter::grep::GrepConfig) = "grep",
        /// Append, remove or allow-list keys (Fluent Bit `record_modifier`).
        RecordModifier(crate::filter::record_modifier::RecordModifierConfig) = "record_modifier",
        /// Set, add, remove, rename, copy keys under conditions (Fluent Bit `modify`).
        Modify(crate::filter::modify::ModifyConfig) = "modify",
        /// Parse a field with a `json` parser (Fluent Bit `parser`).
        Parser(crate::filter::parser::ParserFilterConfig) = "parser",
        /// Join the lines of stack traces and split lines (Fluent Bit `multiline`).
        Multiline(crate::filter::multiline::MultilineFilterConfig) = "multiline",
        /// Append EC2 instance metadata (Fluent Bit `aws`).
        Aws(crate::filter::aws::AwsFilterConfig) = "aws",
        /// Append keys from the ECS task metadata (Fluent Bit `ecs`).
        Ecs(crate::filter::ecs::EcsFilterConfig) = "ecs",
    }
}

registry! {
    /// One `[[outputs]]` entry.
    pub enum OutputConfig => dyn OutputComponent with OutputKeys {
        /// JSON lines on standard output.
        Stdout(crate::output::stdout::StdoutConfig) = "stdout",
        /// Discard everything (counted as sent).
        Null(crate::output::null::NullConfig) = "null",
        /// Another forward-protocol receiver (an aggregator tier).
        Forward(crate::output::forward::ForwardOutputConfig) = "forward",
        /// CloudWatch Logs (Fluent Bit `cloudwatch_logs`, the Go `cloudwatch`).
        CloudwatchLogs(crate::output::cloudwatch::CloudWatchLogsConfig) = "cloudwatch_logs" | "cloudwatch",
        /// Amazon Data Firehose (the Go `firehose`, Fluent Bit `kinesis_firehose`).
        Firehose(crate::output::firehose::FirehoseConfig) = "firehose" | "kinesis_firehose",
        /// Amazon Kinesis Data Streams (Fluent Bit `kinesis_streams`, the Go `kinesis`).
        KinesisStreams(crate::output::kinesis::KinesisConfig) = "kinesis_streams",
        /// S3 objects (Fluent Bit `s3`).
        S3(crate::output::s3::S3Config) = "s3",
        /// A WebAssembly output plugin (world `output`): the plugin encodes, the router sends.
        Wasm(crate::output::wasm::WasmOutputConfig) = "wasm",
    }
}

impl OutputConfig {
    /// The id this output has in metrics, logs and `dead_letter.output`: its `name`, else its
    /// type.
    pub fn id(&self) -> &str {
        self.keys().id(self.type_name())
    }
}

impl FilterConfig {
    /// `match`, `match_regex` and `name`.
    pub fn route(&self) -> &MatchKeys {
        self.keys()
    }
}
