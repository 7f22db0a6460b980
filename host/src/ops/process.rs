//! The router process's own resource use, read from `/proc/self` at every scrape and exposed
//! under the standard Prometheus process metric names (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, …).
//!
//! On systems without `/proc` the collector reports only what it can (the start time).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock ticks per second of the `utime`/`stime` fields of `/proc/<pid>/stat`. Linux fixes
/// `USER_HZ` at 100 in its user ABI on every architecture the router is built for.
const USER_HZ: f64 = 100.0;

/// A snapshot of the process's resource use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size (`VmRSS`), bytes.
    pub resident_bytes: Option<u64>,
    /// Peak resident set size since start (`VmHWM`), bytes.
    pub resident_peak_bytes: Option<u64>,
    /// Virtual memory size (`VmSize`), bytes.
    pub virtual_bytes: Option<u64>,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Threads of the process.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
}

impl ProcessStats {
    /// Read the current values from `/proc/self`.
    pub fn read() -> Self {
        let mut stats = ProcessStats::default();
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            stats.resident_bytes = status_kib(&status, "VmRSS:");
            stats.resident_peak_bytes = status_kib(&status, "VmHWM:");
            stats.virtual_bytes = status_kib(&status, "VmSize:");
            stats.threads = status_value(&status, "Threads:").and_then(|v| v.parse().ok());
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            stats.cpu_seconds = cpu_seconds_from_stat(&stat);
        }
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        stats
    }
}

fn status_value<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let value = status_value(status, key)?;
    let kib: u64 = value
        .strip_suffix("kB")
        .unwrap_or(value)
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted from its closing parenthesis.
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the command name come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Reports [`ProcessStats`] on every scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    /// A collector for this process, started now.
    pub fn new() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        ProcessCollector {
            start_time_seconds: start,
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = ProcessStats::read();
        let mut gauge =
            |name: &str, help: &str, value: Option<f64>| -> Result<(), std::fmt::Error> {
                if let Some(v) = value {
                    let g = ConstGauge::new(v);
                    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
                }
                Ok(())
            };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stats.resident_bytes.map(|v| v as f64),
        )?;
        gauge(
            "process_resident_memory_peak_bytes",
            "Peak resident memory size since start, in bytes",
            stats.resident_peak_bytes.map(|v| v as f64),
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stats.virtual_bytes.map(|v| v as f64),
        )?;
        gauge(
            "process_threads",
            "Threads of the router process",
            stats.threads.map(|v| v as f64),
        )?;
        gauge(
            "process_open_fds",
            "Open file descriptors",
            stats.open_fds.map(|v| v as f64),
        )?;
        gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds",
            Some(self.start_time_seconds),
        )?;
        if let Some(cpu) = stats.cpu_seconds {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\twasm-router\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10 << 20));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20 << 20));
        assert_eq!(status_value(status, "Threads:"), Some("7"));
        let stat =
            "42 (wasm (router) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 0 0";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.0));
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(s.resident_bytes.unwrap() > 0);
            assert!(s.cpu_seconds.is_some());
            assert!(s.open_fds.unwrap() >= 3);
        }
    }
}
