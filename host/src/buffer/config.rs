//! `buffer = { … }` of an output: the config of its buffer, checked and turned into a
//! [`BufferKind`].

use super::{BufferKind, DiskOptions, FsyncPolicy, WhenFull};
use crate::config::{ByteSize, DurationStr};
use serde::Deserialize;
use std::path::PathBuf;

/// `buffer = { … }` of an output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// `memory` (default) or `disk`.
    #[serde(rename = "type", default)]
    pub kind: BufferType,
    /// Most bytes waiting or in flight for this output (default: memory 64MiB, never more than
    /// `[service] memory_budget`; disk 256MiB of segment files).
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// `block` (backpressure: inputs read more slowly) or `drop_newest` (counted).
    #[serde(default)]
    pub when_full: WhenFull,
    /// Disk only: the directory under which this output's buffer lives (in a subdirectory named
    /// after the output).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Disk only: `always`, `interval` (default) or `never`.
    #[serde(default)]
    pub fsync: Option<FsyncPolicy>,
    /// Disk only: the period of `fsync = "interval"` (default `"1s"`).
    #[serde(default)]
    pub fsync_interval: Option<DurationStr>,
}

/// `buffer.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferType {
    /// In memory, under the router's memory budget.
    #[default]
    Memory,
    /// Append-only segment files, recovered on restart.
    Disk,
}

/// Default `max_bytes` of a memory buffer.
pub const DEFAULT_MEMORY_BUFFER_BYTES: u64 = 64 << 20;
/// Default `max_bytes` of a disk buffer.
pub const DEFAULT_DISK_BUFFER_BYTES: u64 = 256 << 20;

impl BufferConfig {
    /// The buffer of the output whose metric id is `output_id` (validated before).
    pub fn kind(&self, output_id: &str) -> BufferKind {
        match self.kind {
            BufferType::Memory => BufferKind::Memory {
                max_bytes: self.max_bytes.map_or(DEFAULT_MEMORY_BUFFER_BYTES, |b| b.0) as usize,
                when_full: self.when_full,
            },
            BufferType::Disk => BufferKind::Disk(DiskOptions {
                dir: self.path.clone().unwrap_or_default().join(output_id),
                max_bytes: self.max_bytes.map_or(DEFAULT_DISK_BUFFER_BYTES, |b| b.0),
                when_full: self.when_full,
                fsync: self.fsync.unwrap_or_default(),
                fsync_interval: self
                    .fsync_interval
                    .map_or(std::time::Duration::from_secs(1), |d| d.0),
            }),
        }
    }

    /// Check the keys under `{key}.buffer`, adding one problem per mistake.
    pub fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if self.max_bytes.is_some_and(|m| m.0 == 0) {
            problems.push(format!(
                "{key}.buffer.max_bytes must be more than 0, e.g. \"64MiB\""
            ));
        }
        match self.kind {
            BufferType::Memory => {
                for (set, name) in [
                    (self.path.is_some(), "path"),
                    (self.fsync.is_some(), "fsync"),
                    (self.fsync_interval.is_some(), "fsync_interval"),
                ] {
                    if set {
                        problems.push(format!("{key}.buffer.{name} is only for disk buffers: add `type = \"disk\"` or remove it"));
                    }
                }
            }
            BufferType::Disk if self.path.is_none() => problems.push(format!(
                "{key}.buffer: a disk buffer needs `path`, e.g. `buffer = {{ type = \"disk\", path = \"/var/lib/wasm-router\" }}`"
            )),
            BufferType::Disk => {}
        }
        if self.fsync_interval.is_some_and(|d| d.0.is_zero()) {
            problems.push(format!(
                "{key}.buffer.fsync_interval must be more than 0, e.g. \"1s\""
            ));
        }
    }

    /// The disk directory this buffer's segments go under, for outputs with a disk buffer.
    pub fn disk_path(&self) -> Option<&PathBuf> {
        (self.kind == BufferType::Disk)
            .then_some(self.path.as_ref())
            .flatten()
    }
}
