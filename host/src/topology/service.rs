//! `[service]`: process-wide settings, and their checks.

use crate::config::{ByteSize, DurationStr, positive_size};
use serde::Deserialize;
use std::path::PathBuf;

/// `[service]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// How long shutdown may take to deliver what was received (e.g. `"30s"`).
    #[serde(default = "default_grace")]
    pub grace: DurationStr,
    /// Address of the health and metrics HTTP server; absent = off.
    #[serde(default)]
    pub http_listen: Option<String>,
    /// The router's own log level (`error`, `warn`, `info`, `debug`, `trace`, `off`);
    /// `RUST_LOG` overrides it.
    #[serde(default)]
    pub log_level: Option<String>,
    /// The router's own log format: `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub log_format: crate::ops::logging::LogFormat,
    /// An output counts as stuck on `/api/v1/health/delivery` when events have waited this long
    /// without a successful delivery (default `"60s"`).
    #[serde(default = "default_delivery_stuck_after")]
    pub delivery_stuck_after: DurationStr,
    /// Reload plugins and this config when one of their files changes (default `true`;
    /// SIGHUP and `POST /api/v2/reload` always reload).
    #[serde(default = "default_true")]
    pub reload_on_change: bool,
    /// Where compiled plugins are cached; absent = the user cache directory.
    #[serde(default)]
    pub plugin_cache_dir: Option<PathBuf>,
    /// Most bytes all memory buffers hold together (e.g. `"64MiB"`); absent = half the cgroup
    /// memory limit when one is visible, else 256MiB (see `buffer::budget`).
    #[serde(default)]
    pub memory_budget: Option<ByteSize>,
    /// First retry delay ceiling of the outputs' exponential backoff with full jitter
    /// (Fluent Bit `scheduler.base`; default `"100ms"`).
    #[serde(default = "default_retry_backoff_base")]
    pub retry_backoff_base: DurationStr,
    /// Largest retry delay (Fluent Bit `scheduler.cap`; default `"30s"`).
    #[serde(default = "default_retry_backoff_cap")]
    pub retry_backoff_cap: DurationStr,
    /// Every output's flush window unless it sets its own `batch_timeout` (classic `[SERVICE]
    /// Flush`); absent = each output type's default.
    #[serde(default)]
    pub batch_timeout: Option<DurationStr>,
    /// Join lines that Docker / Fargate split at 16 KiB (records with `partial_message`) before
    /// any filter sees them (default `true`).
    #[serde(default = "default_true")]
    pub partial_reassembly: bool,
    /// How long the parts of a split line wait for the rest before they are passed on, marked
    /// `partial_incomplete` (default `"2s"`).
    #[serde(default = "default_partial_flush_timeout")]
    pub partial_flush_timeout: DurationStr,
    /// Longest joined line; longer lines are passed on in pieces of this size, marked
    /// `partial_incomplete` (default `"1MiB"`).
    #[serde(default = "default_partial_max_bytes")]
    pub partial_max_bytes: ByteSize,
    /// Fluent Bit's health check (`[SERVICE] Health_Check On`): `/api/v1/health` answers
    /// `500 error` after too many output errors or retry failures within a period. Without it,
    /// `/api/v1/health` is liveness only.
    #[serde(default)]
    pub health_check: Option<crate::ops::fluent_bit_api::HealthCheckConfig>,
    /// Serve `/api/v1/storage` (Fluent Bit's `storage.metrics on`): each output's buffer.
    #[serde(default)]
    pub storage_metrics: bool,
}

fn default_retry_backoff_base() -> DurationStr {
    DurationStr(std::time::Duration::from_millis(100))
}

fn default_retry_backoff_cap() -> DurationStr {
    DurationStr::from_secs(30)
}

fn default_partial_flush_timeout() -> DurationStr {
    DurationStr::from_secs(2)
}

fn default_partial_max_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

fn default_grace() -> DurationStr {
    DurationStr::from_secs(30)
}

fn default_delivery_stuck_after() -> DurationStr {
    DurationStr::from_secs(60)
}

fn default_true() -> bool {
    true
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            grace: default_grace(),
            http_listen: None,
            log_level: None,
            log_format: Default::default(),
            delivery_stuck_after: default_delivery_stuck_after(),
            reload_on_change: true,
            plugin_cache_dir: None,
            memory_budget: None,
            retry_backoff_base: default_retry_backoff_base(),
            retry_backoff_cap: default_retry_backoff_cap(),
            batch_timeout: None,
            partial_reassembly: true,
            partial_flush_timeout: default_partial_flush_timeout(),
            partial_max_bytes: default_partial_max_bytes(),
            health_check: None,
            storage_metrics: false,
        }
    }
}

/// Smallest `retry_backoff_base`: a zero base retried a failing destination ~800 times a second.
pub const MIN_RETRY_BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(1);

impl ServiceConfig {
    /// Check `[service]`, adding one problem per mistake.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if let Some(listen) = &self.http_listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "service.http_listen = {listen:?} is not `ip:port`; e.g. \"127.0.0.1:2020\""
            ));
        }
        if let Some(level) = &self.log_level
            && let Err(e) = crate::ops::logging::parse_level(level)
        {
            problems.push(format!("service.log_level: {e}"));
        }
        if self.retry_backoff_base.0 < MIN_RETRY_BACKOFF_BASE {
            problems.push(
                "service.retry_backoff_base must be at least \"1ms\" (a zero base retries a failing destination hundreds of times a second); e.g. \"100ms\"".to_string(),
            );
        }
        if self.retry_backoff_cap.0 < self.retry_backoff_base.0 {
            problems.push(format!(
                "service.retry_backoff_cap ({:?}) must be at least service.retry_backoff_base ({:?}); e.g. \"30s\"",
                self.retry_backoff_cap.0, self.retry_backoff_base.0
            ));
        }
        for (name, value, example) in [
            ("delivery_stuck_after", self.delivery_stuck_after, "\"60s\""),
            (
                "partial_flush_timeout",
                self.partial_flush_timeout,
                "\"2s\"",
            ),
        ] {
            if value.0.is_zero() {
                problems.push(format!(
                    "service.{name} must be more than 0, e.g. {example}"
                ));
            }
        }
        positive_size(
            "service",
            "memory_budget",
            self.memory_budget,
            "\"64MiB\"",
            problems,
        );
        positive_size(
            "service",
            "partial_max_bytes",
            Some(self.partial_max_bytes),
            "\"1MiB\"",
            problems,
        );
    }
}
