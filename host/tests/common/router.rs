//! The router-process harness every integration test uses: start the real `wasm-router` binary
//! (on a config text, with arguments and environment, or through a script that execs it),
//! capture its output, wait for its listeners from its own log, read the events its `stdout`
//! output prints, and stop it with a signal; a process still running is killed on drop.

use super::{HANG_TIMEOUT, PrintedEvent};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines a child process printed, shared with the thread that reads them.
#[derive(Default)]
pub struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    /// Read `source` line by line on a new thread until it ends.
    pub fn collect(source: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let sink = lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(source);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = strip_ansi(&String::from_utf8_lossy(&buf));
                        let mut state = sink.state.lock().unwrap();
                        state
                            .0
                            .push(line.trim_end_matches(['\n', '\r']).to_string());
                        sink.changed.notify_all();
                    }
                }
            }
            sink.state.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        lines
    }

    /// Every line so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// Wait until `done` holds for the lines so far, or the stream ends, or `timeout`.
    /// Returns whether `done` held.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if done(&state.0) {
                return true;
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return false;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Wait until the stream ends (the process closed it); returns every line.
    pub fn wait_closed(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let now = Instant::now();
            assert!(now < deadline, "output still open after {timeout:?}");
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        state.0.clone()
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `wasm-router` process. Killed on drop if still running.
pub struct RouterProcess {
    child: Child,
    /// The temporary directory holding the config (and any unix socket of the test).
    pub dir: tempfile::TempDir,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
}

impl RouterProcess {
    /// `wasm-router run -c <config>`, where `config` is TOML in which `{dir}` stands for a fresh
    /// temporary directory (put unix sockets there).
    pub fn start(config: &str) -> Self {
        Self::start_with_env::<&str, &str>(config, &[])
    }

    /// [`RouterProcess::start`] with extra environment variables (e.g. for `${VAR}` secrets).
    pub fn start_with_env<K: AsRef<OsStr>, V: AsRef<OsStr>>(config: &str, env: &[(K, V)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), config);
        let mut cmd = router_command();
        cmd.arg("run").arg("-c").arg(path);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        Self::spawn(&mut cmd, dir)
    }

    /// `wasm-router ARGS…` with `dir` kept alive as long as the process.
    pub fn start_with_args(args: &[&str], dir: tempfile::TempDir) -> Self {
        Self::spawn(router_command().args(args), dir)
    }

    /// Start `cmd` (a [`router_command`] with its arguments and environment, or a script that
    /// execs the router) with its output captured; `dir` is kept alive as long as the process.
    pub fn spawn(cmd: &mut Command, dir: tempfile::TempDir) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        RouterProcess {
            child,
            dir,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every listener address the router logged (`tcp://…`, `unix://…`), waiting until
    /// `wanted` of them are up. Panics with the router's log if it exits first.
    pub fn listening(&self, wanted: usize) -> Vec<String> {
        let found = self
            .stderr
            .wait_until(HANG_TIMEOUT, |lines| listen_addrs(lines).len() >= wanted);
        if !found {
            panic!(
                "wasm-router did not log {wanted} listener(s); its log:\n{}",
                self.stderr.snapshot().join("\n")
            );
        }
        listen_addrs(&self.stderr.snapshot())
    }

    /// The address of its HTTP server (`[service] http_listen`; waits for it).
    pub fn http_addr(&self) -> String {
        let line = self.wait_for_log("the http server", |l| l.contains("http_addr="));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("http_addr="))
            .unwrap()
            .to_string()
    }

    /// The first TCP address it listens on (waits for it).
    pub fn tcp_addr(&self) -> String {
        self.wait_listener("tcp://")
    }

    /// The first unix socket it listens on (waits for it).
    pub fn unix_path(&self) -> PathBuf {
        PathBuf::from(self.wait_listener("unix://"))
    }

    fn wait_listener(&self, scheme: &str) -> String {
        let find = |lines: &[String]| {
            listen_addrs(lines)
                .into_iter()
                .find_map(|a| a.strip_prefix(scheme).map(String::from))
        };
        if !self
            .stderr
            .wait_until(HANG_TIMEOUT, |lines| find(lines).is_some())
        {
            panic!(
                "wasm-router did not log a {scheme} listener; its log:\n{}",
                self.stderr.snapshot().join("\n")
            );
        }
        find(&self.stderr.snapshot()).unwrap()
    }

    /// The router's log so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// The router's log so far, as one text.
    pub fn log_text(&self) -> String {
        self.stderr.snapshot().join("\n")
    }

    /// Wait until a log line satisfies `pred`; returns it. Panics with the log on timeout.
    pub fn wait_for_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let ok = self
            .stderr
            .wait_until(HANG_TIMEOUT, |lines| lines.iter().any(|l| pred(l)));
        let log = self.stderr.snapshot();
        match log.iter().find(|l| pred(l)) {
            Some(line) if ok => line.clone(),
            _ => panic!(
                "wasm-router never logged {what}; its log:\n{}",
                log.join("\n")
            ),
        }
    }

    /// Wait until the `stdout` output printed at least `n` events; returns those printed so far.
    pub fn wait_for_events(&self, n: usize) -> Vec<PrintedEvent> {
        if !self
            .stdout
            .wait_until(HANG_TIMEOUT, |lines| lines.len() >= n)
        {
            panic!(
                "wasm-router printed {} of {n} events; its log:\n{}",
                self.stdout.snapshot().len(),
                self.stderr.snapshot().join("\n")
            );
        }
        self.events()
    }

    /// Every event printed so far.
    pub fn events(&self) -> Vec<PrintedEvent> {
        self.stdout
            .snapshot()
            .iter()
            .map(|l| PrintedEvent::parse(l))
            .collect()
    }

    /// Send a signal (`"TERM"`, `"INT"`, …) to the router.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "wasm-router still running {timeout:?} later; its log:\n{}",
                    self.stderr.snapshot().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and wait for a successful exit.
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(HANG_TIMEOUT);
        assert!(
            status.success(),
            "wasm-router exited with {status}; its log:\n{}",
            self.log_text()
        );
    }

    /// [`terminate`](Self::terminate), and return every event it printed.
    pub fn stop(mut self) -> Vec<PrintedEvent> {
        self.terminate();
        self.events_after_exit()
    }

    /// Every event printed, once the process has exited and its stdout is read to the end.
    pub fn events_after_exit(&self) -> Vec<PrintedEvent> {
        self.stdout
            .wait_closed(HANG_TIMEOUT)
            .iter()
            .map(|l| PrintedEvent::parse(l))
            .collect()
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The addresses of the `listening` lines of the router's log, in order.
pub fn listen_addrs(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|l| l.contains("listening"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .map(String::from)
        })
        .collect()
}

/// Write `config` to `dir/router.toml`, `{dir}` in it replaced by `dir`; returns the path.
pub fn write_config(dir: &Path, config: &str) -> PathBuf {
    let path = dir.join("router.toml");
    std::fs::write(&path, config.replace("{dir}", dir.to_str().unwrap())).unwrap();
    path
}

/// A command for the `wasm-router` binary under test, logging without colours.
/// `WASM_ROUTER_TEST_BIN` names another binary to test (e.g. a copy, when several checkouts
/// share one target directory and its `target/debug/wasm-router`).
pub fn router_command() -> Command {
    let bin = std::env::var_os("WASM_ROUTER_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wasm-router").into());
    let mut cmd = Command::new(bin);
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}
