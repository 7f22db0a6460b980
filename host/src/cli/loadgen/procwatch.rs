//! Watching another process (the router) through `/proc`: CPU time (`utime + stime` of
//! `/proc/<pid>/stat`, every thread, exited ones included), resident memory (`VmRSS`, of which
//! `RssAnon` is what the router allocated) and its peak (`VmHWM`, since the process started)
//! from `/proc/<pid>/status`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A process being watched.
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    /// Its pid.
    pub pid: u32,
    ticks_per_second: u64,
}

impl Watched {
    /// Watch `pid`; fails when it does not exist.
    pub fn new(pid: u32) -> Result<Self, String> {
        let w = Watched {
            pid,
            ticks_per_second: clock_ticks_per_second(),
        };
        w.cpu_seconds()
            .map_err(|e| format!("cannot watch pid {pid}: {e}"))?;
        Ok(w)
    }

    /// User + system CPU seconds the process used so far.
    pub fn cpu_seconds(&self) -> std::io::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        cpu_ticks_from_stat(&stat)
            .map(|t| t as f64 / self.ticks_per_second as f64)
            .ok_or_else(|| std::io::Error::other("unexpected /proc/<pid>/stat format"))
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> std::io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status_field_kib(&status, field)
            .ok_or_else(|| std::io::Error::other(format!("no {field} in /proc/<pid>/status")))
    }

    /// Wait until the process is idle (less than 10 ms of CPU per 100 ms, twice in a row) or
    /// `max` has passed: the work queued in it (buffers, outputs) is done.
    pub fn wait_until_idle(&self, max: Duration) {
        let deadline = Instant::now() + max;
        let mut quiet = 0;
        let mut last = self.cpu_seconds().unwrap_or(0.0);
        while Instant::now() < deadline && quiet < 2 {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.cpu_seconds().unwrap_or(last);
            quiet = if now - last < 0.010 { quiet + 1 } else { 0 };
            last = now;
        }
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces; count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let value = l.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// `AT_CLKTCK` from the auxiliary vector (the unit of `/proc/<pid>/stat` times); 100 if absent.
fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    auxv.chunks_exact(16)
        .map(|pair| {
            (
                u64::from_ne_bytes(pair[..8].try_into().unwrap()),
                u64::from_ne_bytes(pair[8..].try_into().unwrap()),
            )
        })
        .find(|(key, _)| *key == AT_CLKTCK)
        .map(|(_, value)| value)
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// Samples a process's RSS at a fixed interval on a thread.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<RssSample>>>,
    thread: std::thread::JoinHandle<()>,
}

/// One sample of the router's resident memory.
#[derive(Debug, Clone, Copy)]
pub struct RssSample {
    /// Seconds since the start of the run.
    pub seconds: f64,
    /// `VmRSS`: everything resident, including the pages of the binary and of mapped files
    /// (the compiled plugins), which are shared and reclaimable.
    pub rss_kib: u64,
    /// `RssAnon`: the memory the router allocated (heap, stacks, guest memories, buffers).
    pub anon_kib: u64,
}

/// Most samples kept (a day at 100 ms).
const MAX_SAMPLES: usize = 864_000;

impl RssSampler {
    /// Start sampling `watched` every `interval`; times are seconds since `start`.
    pub fn start(watched: Watched, interval: Duration, start: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop2, samples2) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if let (Ok(rss_kib), Ok(anon_kib)) =
                    (watched.status_kib("VmRSS"), watched.status_kib("RssAnon"))
                {
                    let mut s = samples2.lock().unwrap();
                    if s.len() < MAX_SAMPLES {
                        s.push(RssSample {
                            seconds: start.elapsed().as_secs_f64(),
                            rss_kib,
                            anon_kib,
                        });
                    }
                }
                std::thread::sleep(interval);
            }
        });
        RssSampler {
            stop,
            samples,
            thread,
        }
    }

    /// Stop and return the samples.
    pub fn finish(self) -> Vec<RssSample> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// `/proc/loadavg`: the 1, 5 and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_spaces_and_parentheses_in_the_name() {
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(cpu_ticks_from_stat(stat), Some(325));
    }

    #[test]
    fn reads_this_process() {
        let me = Watched::new(std::process::id()).unwrap();
        assert!(me.cpu_seconds().unwrap() >= 0.0);
        let rss = me.status_kib("VmRSS").unwrap();
        let hwm = me.status_kib("VmHWM").unwrap();
        assert!(rss > 0 && hwm > 0, "rss {rss} hwm {hwm}");
        assert!(load_average().is_some());
        assert!(clock_ticks_per_second() >= 100);
    }
}
