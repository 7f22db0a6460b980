//! `wasm-router top`: a live terminal view of a running router, like `vector top`.
//!
//! It scrapes the router's Prometheus endpoint (`[service] http_listen`, default
//! `http://127.0.0.1:2020/metrics`) every interval and shows, per component: events in and out
//! (totals and per second), drops, errors, retries, an output's events per request (from
//! `output_request_events`: how well its flush window batches), what waits in the buffer, and
//! for WASM plugins the call latency (p50 / p99 over the last interval, from the histogram
//! buckets) and faults. `q`, `Esc` or `Ctrl-C` quits.

use crate::cli::format::bytes;
use anyhow::{Context as _, bail};
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use wasm_router::ops::prometheus_text::{self, Sample};

/// Most bytes read from the metrics endpoint.
const MAX_RESPONSE_BYTES: u64 = 32 << 20;
/// Connect and read timeout of one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// Arguments of `wasm-router top`.
#[derive(Args)]
pub struct TopArgs {
    /// The router's Prometheus endpoint.
    #[arg(long, default_value = "http://127.0.0.1:2020/metrics")]
    url: String,
    /// Refresh interval in milliseconds.
    #[arg(short, long, default_value_t = 1000)]
    interval: u64,
}

/// Run the view until the user quits.
pub fn run(args: TopArgs) -> anyhow::Result<std::process::ExitCode> {
    let target = HttpTarget::parse(&args.url)?;
    let interval = Duration::from_millis(args.interval.max(100));
    let mut terminal =
        ratatui::try_init().context("cannot open the terminal (wasm-router top needs a TTY)")?;
    let result = view_loop(&mut terminal, &target, interval);
    ratatui::restore();
    result.map(|()| std::process::ExitCode::SUCCESS)
}

fn view_loop(
    terminal: &mut ratatui::DefaultTerminal,
    target: &HttpTarget,
    interval: Duration,
) -> anyhow::Result<()> {
    let mut view = TopView::new(target.url.clone());
    loop {
        let started = Instant::now();
        match target.get() {
            Ok(text) => match prometheus_text::parse(&text) {
                Ok(samples) => view.update(Snapshot::from_samples(&samples), Instant::now()),
                Err(e) => view.error = Some(format!("cannot read the metrics: {e}")),
            },
            Err(e) => {
                view.error = Some(format!(
                    "{e:#}; is the router running with [service] http_listen?"
                ))
            }
        }
        terminal.draw(|frame| view.render(frame))?;
        while let Some(left) = interval.checked_sub(started.elapsed()) {
            if !event::poll(left)? {
                break;
            }
            if let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return Ok(());
                }
            }
        }
    }
}

/// A plain-HTTP endpoint: `http://host:port/path`.
struct HttpTarget {
    url: String,
    host: String,
    authority: String,
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!(
                "--url {url:?}: only http:// URLs are supported, e.g. http://127.0.0.1:2020/metrics"
            );
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        if authority.is_empty() {
            bail!("--url {url:?} has no host");
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpTarget {
            url: url.to_string(),
            host: with_port,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// GET the body (status 200 only).
    fn get(&self) -> anyhow::Result<String> {
        let addr = self
            .host
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.host))?
            .next()
            .with_context(|| format!("{} resolves to no address", self.host))?;
        let mut stream = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT)
            .with_context(|| format!("connecting to {}", self.url))?;
        stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
        stream.set_write_timeout(Some(SCRAPE_TIMEOUT))?;
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            self.path, self.authority
        )?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut raw)
            .with_context(|| format!("reading {}", self.url))?;
        parse_http_response(&raw).with_context(|| format!("GET {}", self.url))
    }
}

/// The body of a complete HTTP/1.1 response, de-chunked; an error unless the status is 200.
fn parse_http_response(raw: &[u8]) -> anyhow::Result<String> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("incomplete HTTP response")?;
    let head = std::str::from_utf8(&raw[..header_end]).context("HTTP headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("the server answered {status:?}");
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let mut body = &raw[header_end + 4..];
    if !chunked {
        return Ok(String::from_utf8_lossy(body).into_owned());
    }
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk header")?;
        let size_text = std::str::from_utf8(&body[..line_end])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        if body.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// A component of the data path: `(kind, id)`. Plugins appear under kind `plugin` unless a
/// filter or output of the same id exists, whose row they then complete.
type ComponentKey = (String, String);

/// Cumulative values of one component at one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
struct ComponentTotals {
    received: f64,
    sent: f64,
    discarded: f64,
    errors: f64,
    retries: f64,
    buffered_events: f64,
    buffered_bytes: f64,
    plugin_faults: f64,
    /// Events carried by the requests an output's destinations accepted, and those requests.
    request_events: f64,
    requests: f64,
    /// `(upper bound, cumulative count)` of the plugin call-latency histogram.
    latency_buckets: Vec<(f64, f64)>,
}

/// One scrape, reduced to what the view shows.
#[derive(Clone, Debug, Default)]
struct Snapshot {
    components: BTreeMap<ComponentKey, ComponentTotals>,
    resident_bytes: Option<f64>,
    cpu_seconds: Option<f64>,
}

impl Snapshot {
    fn from_samples(samples: &[Sample]) -> Snapshot {
        let mut snap = Snapshot::default();
        for s in samples {
            let component = || {
                (
                    s.label("component_kind").to_string(),
                    s.label("component_id").to_string(),
                )
            };
            match s.name.as_str() {
                "component_received_events_total" => {
                    snap.components.entry(component()).or_default().received += s.value
                }
                "component_sent_events_total" => {
                    snap.components.entry(component()).or_default().sent += s.value
                }
                "component_discarded_events_total" => {
                    snap.components.entry(component()).or_default().discarded += s.value
                }
                "component_errors_total" => {
                    snap.components.entry(component()).or_default().errors += s.value
                }
                "component_retries_total" => {
                    snap.components.entry(component()).or_default().retries += s.value
                }
                "output_request_events_sum" => {
                    snap.components
                        .entry(component())
                        .or_default()
                        .request_events += s.value
                }
                "output_request_events_count" => {
                    snap.components.entry(component()).or_default().requests += s.value
                }
                "buffer_events" => {
                    snap.components
                        .entry(component())
                        .or_default()
                        .buffered_events += s.value
                }
                "buffer_bytes" => {
                    snap.components
                        .entry(component())
                        .or_default()
                        .buffered_bytes += s.value
                }
                "wasm_plugin_faults_total" => {
                    snap.plugin_entry(s.label("plugin")).plugin_faults += s.value
                }
                "wasm_plugin_call_seconds_bucket" => {
                    let le = prometheus_text::parse_value(s.label("le")).unwrap_or(f64::INFINITY);
                    snap.plugin_entry(s.label("plugin"))
                        .latency_buckets
                        .push((le, s.value));
                }
                "process_resident_memory_bytes" => snap.resident_bytes = Some(s.value),
                "process_cpu_seconds_total" => snap.cpu_seconds = Some(s.value),
                _ => {}
            }
        }
        for c in snap.components.values_mut() {
            c.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        snap
    }

    /// The row a plugin's values go to: its filter or output of the same id, else its own.
    fn plugin_entry(&mut self, plugin: &str) -> &mut ComponentTotals {
        let key = ["filter", "output"]
            .iter()
            .map(|kind| (kind.to_string(), plugin.to_string()))
            .find(|k| self.components.contains_key(k))
            .unwrap_or_else(|| ("plugin".to_string(), plugin.to_string()));
        self.components.entry(key).or_default()
    }
}

/// The quantile `q` of the calls between two cumulative histograms, by linear interpolation
/// inside the bucket that holds it (as Prometheus' `histogram_quantile`).
fn latency_quantile(prev: &[(f64, f64)], cur: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = cur
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - prev
                    .iter()
                    .find(|(p, _)| p == le)
                    .map(|(_, c)| *c)
                    .unwrap_or(0.0),
            )
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in &delta {
        if *count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (*le, *count);
    }
    None
}

/// What the screen shows, kept between scrapes to compute rates.
struct TopView {
    url: String,
    previous: Option<(Snapshot, Instant)>,
    current: Option<(Snapshot, Instant)>,
    error: Option<String>,
}

/// One table row.
#[derive(Debug, PartialEq)]
struct ComponentRow {
    kind: String,
    id: String,
    received: f64,
    received_rate: Option<f64>,
    sent: f64,
    sent_rate: Option<f64>,
    discarded: f64,
    errors: f64,
    retries: f64,
    buffered_events: f64,
    buffered_bytes: f64,
    latency_p50: Option<f64>,
    latency_p99: Option<f64>,
    plugin_faults: f64,
    /// Mean events per accepted request: over the last interval, else since the start.
    events_per_request: Option<f64>,
}

impl TopView {
    fn new(url: String) -> Self {
        TopView {
            url,
            previous: None,
            current: None,
            error: None,
        }
    }

    fn update(&mut self, snapshot: Snapshot, at: Instant) {
        self.previous = self.current.take();
        self.current = Some((snapshot, at));
        self.error = None;
    }

    fn rows(&self) -> Vec<ComponentRow> {
        let Some((cur, at)) = &self.current else {
            return Vec::new();
        };
        let prev = self.previous.as_ref();
        let elapsed = prev
            .map(|(_, p)| at.duration_since(*p).as_secs_f64())
            .filter(|e| *e > 0.0);
        let kind_order = |k: &str| {
            ["input", "router", "filter", "plugin", "output"]
                .iter()
                .position(|x| *x == k)
                .unwrap_or(9)
        };
        let mut keys: Vec<&ComponentKey> = cur.components.keys().collect();
        keys.sort_by_key(|(kind, id)| (kind_order(kind), id.clone()));
        keys.into_iter()
            .map(|key| {
                let c = &cur.components[key];
                let before = prev.and_then(|(p, _)| p.components.get(key));
                let rate = |now: f64, then: Option<f64>| Some((now - then?).max(0.0) / elapsed?);
                let empty = Vec::new();
                let prev_buckets = before.map(|b| &b.latency_buckets).unwrap_or(&empty);
                let has_prev = before.is_some();
                ComponentRow {
                    kind: key.0.clone(),
                    id: key.1.clone(),
                    received: c.received,
                    received_rate: rate(c.received, before.map(|b| b.received)),
                    sent: c.sent,
                    sent_rate: rate(c.sent, before.map(|b| b.sent)),
                    discarded: c.discarded,
                    errors: c.errors,
                    retries: c.retries,
                    buffered_events: c.buffered_events,
                    buffered_bytes: c.buffered_bytes,
                    latency_p50: has_prev
                        .then(|| latency_quantile(prev_buckets, &c.latency_buckets, 0.5))
                        .flatten(),
                    latency_p99: has_prev
                        .then(|| latency_quantile(prev_buckets, &c.latency_buckets, 0.99))
                        .flatten(),
                    plugin_faults: c.plugin_faults,
                    events_per_request: {
                        let (events, requests) = match before {
                            Some(b) if c.requests > b.requests => {
                                (c.request_events - b.request_events, c.requests - b.requests)
                            }
                            _ => (c.request_events, c.requests),
                        };
                        (requests > 0.0).then(|| events / requests)
                    },
                }
            })
            .collect()
    }

    fn header(&self) -> String {
        let mut parts = vec![format!("wasm-router top — {}", self.url)];
        if let Some((cur, at)) = &self.current {
            if let Some(rss) = cur.resident_bytes {
                parts.push(format!("RSS {}", bytes(rss)));
            }
            if let (Some(now), Some((prev, then))) = (cur.cpu_seconds, &self.previous)
                && let Some(before) = prev.cpu_seconds
            {
                let secs = at.duration_since(*then).as_secs_f64();
                if secs > 0.0 {
                    parts.push(format!(
                        "CPU {:.0}%",
                        (now - before).max(0.0) / secs * 100.0
                    ));
                }
            }
        }
        parts.push("q quits".into());
        parts.join("  │  ")
    }

    fn render(&self, frame: &mut ratatui::Frame<'_>) {
        let [top, status, table_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(3),
        ])
        .areas(frame.area());
        frame.render_widget(
            Paragraph::new(self.header()).style(Style::new().add_modifier(Modifier::BOLD)),
            top,
        );
        let status_line = match &self.error {
            Some(e) => Line::from(format!("error: {e}"))
                .style(Style::new().add_modifier(Modifier::REVERSED)),
            None if self.current.is_none() => Line::from("waiting for the first scrape…"),
            None => Line::from(""),
        };
        frame.render_widget(Paragraph::new(status_line), status);
        let header = Row::new([
            "KIND",
            "ID",
            "EVENTS IN",
            "IN/S",
            "EVENTS OUT",
            "OUT/S",
            "DROPPED",
            "ERRORS",
            "RETRIES",
            "EV/REQ",
            "BUFFERED",
            "P50",
            "P99",
            "FAULTS",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let rows = self.rows().into_iter().map(|r| {
            let is_plugin = r.kind == "plugin" || r.latency_p50.is_some() || r.plugin_faults > 0.0;
            Row::new([
                r.kind,
                r.id,
                count(r.received),
                per_second(r.received_rate),
                count(r.sent),
                per_second(r.sent_rate),
                count(r.discarded),
                count(r.errors),
                count(r.retries),
                r.events_per_request
                    .map_or_else(|| "-".into(), |e| format!("{e:.1}")),
                if r.buffered_events > 0.0 {
                    format!("{} / {}", count(r.buffered_events), bytes(r.buffered_bytes))
                } else {
                    "-".into()
                },
                latency(r.latency_p50),
                latency(r.latency_p99),
                if is_plugin {
                    count(r.plugin_faults)
                } else {
                    "-".into()
                },
            ])
        });
        let widths = [
            Constraint::Length(7),
            Constraint::Min(12),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
        ];
        let table = Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" components "));
        frame.render_widget(table, table_area);
    }
}

fn count(v: f64) -> String {
    format!("{}", v.round() as u64)
}

fn per_second(rate: Option<f64>) -> String {
    match rate {
        None => "-".into(),
        Some(r) if r >= 10_000.0 => format!("{:.1}k", r / 1000.0),
        Some(r) => format!("{r:.1}"),
    }
}

fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 1e-3 => format!("{:.0}µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1e3),
        Some(s) => format!("{s:.2}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn scrape(
        received: u64,
        sent: u64,
        dropped: u64,
        calls_fast: u64,
        calls_slow: u64,
    ) -> Snapshot {
        let text = format!(
            "component_received_events_total{{component_kind=\"input\",component_id=\"forward\"}} {received}\n\
             component_received_events_total{{component_kind=\"filter\",component_id=\"redact\"}} {received}\n\
             component_sent_events_total{{component_kind=\"output\",component_id=\"cw\"}} {sent}\n\
             component_discarded_events_total{{component_kind=\"output\",component_id=\"cw\",reason=\"buffer_full\"}} {dropped}\n\
             buffer_events{{component_kind=\"output\",component_id=\"cw\"}} 7\n\
             output_request_events_sum{{component_kind=\"output\",component_id=\"cw\"}} {sent}\n\
             output_request_events_count{{component_kind=\"output\",component_id=\"cw\"}} {}\n\
             buffer_bytes{{component_kind=\"output\",component_id=\"cw\"}} 2048\n\
             wasm_plugin_call_seconds_bucket{{plugin=\"redact\",le=\"0.001\"}} {calls_fast}\n\
             wasm_plugin_call_seconds_bucket{{plugin=\"redact\",le=\"0.01\"}} {}\n\
             wasm_plugin_call_seconds_bucket{{plugin=\"redact\",le=\"+Inf\"}} {}\n\
             wasm_plugin_faults_total{{plugin=\"redact\",reason=\"trap\"}} 2\n\
             process_resident_memory_bytes 10485760\n",
            sent / 10,
            calls_fast + calls_slow,
            calls_fast + calls_slow
        );
        Snapshot::from_samples(&prometheus_text::parse(&text).unwrap())
    }

    #[test]
    fn rates_latency_and_plugin_rows_come_from_two_scrapes() {
        let mut view = TopView::new("http://x/metrics".into());
        let t0 = Instant::now();
        view.update(scrape(100, 90, 1, 10, 0), t0);
        view.update(scrape(300, 250, 5, 108, 2), t0 + Duration::from_secs(2));
        let rows = view.rows();
        let kinds: Vec<_> = rows
            .iter()
            .map(|r| (r.kind.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("input", "forward"), ("filter", "redact"), ("output", "cw")]
        );
        assert_eq!(rows[0].received_rate, Some(100.0));
        assert_eq!(rows[2].sent_rate, Some(80.0));
        assert_eq!(rows[2].discarded, 5.0);
        // 98 of the 100 calls of the interval took ≤ 1 ms.
        assert!(rows[1].latency_p50.unwrap() <= 0.001);
        assert!(rows[1].latency_p99.unwrap() > 0.001);
        assert_eq!(rows[1].plugin_faults, 2.0);
        assert_eq!(
            rows[2].events_per_request,
            Some(10.0),
            "160 events in 16 requests"
        );

        let mut terminal = Terminal::new(TestBackend::new(150, 10)).unwrap();
        terminal.draw(|f| view.render(f)).unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        for expected in [
            "forward",
            "redact",
            "cw",
            "100.0",
            "80.0",
            "RSS 10.0 MiB",
            "7 / 2.0 KiB",
            "EV/REQ",
            "10.0",
        ] {
            assert!(
                screen.contains(expected),
                "{expected} missing from:\n{screen}"
            );
        }
    }

    #[test]
    fn http_responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nup 1";
        assert_eq!(parse_http_response(plain).unwrap(), "up 1");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nup \r\n1\r\n1\r\n0\r\n\r\n";
        assert_eq!(parse_http_response(chunked).unwrap(), "up 1");
        assert!(
            parse_http_response(b"HTTP/1.1 404 Not Found\r\n\r\n")
                .unwrap_err()
                .to_string()
                .contains("404")
        );
        assert!(HttpTarget::parse("https://x").is_err());
        let t = HttpTarget::parse("http://127.0.0.1:2020").unwrap();
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:2020", "/metrics")
        );
    }
}
