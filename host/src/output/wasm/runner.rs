//! [`WasmOutput`]: the [`Output`] that runs a plugin of world `output`.
//!
//! Per batch: `encode` turns the events into requests (one call per [`MAX_CALL_EVENTS`]
//! events); each request is checked against `allow_hosts`, gets its secret headers and its
//! compression, and is sent; `on-response` classifies each answer (or transport error, as
//! status 0):
//!
//! - `ok`: the request's events are delivered;
//! - `retry(ms)`: the request waits and is sent again as is when the runner retries the batch,
//!   not before `ms` (or the response's `Retry-After` when the plugin gives none);
//! - `fail-permanent(reason)`: the request's events are rejected (counted as `http_<status>`
//!   and dead-lettered) while the rest of the batch counts as delivered;
//! - `split-and-retry`: the request's events are halved and each half encoded again and sent,
//!   down to a single event, which is rejected as `too_large`.
//!
//! A plugin may also report per-event results during `on-response` (`delivery-items.report`,
//! by position in the request's events): each reported event is delivered, rejected under the
//! plugin's reason, or encoded again with the other events to retry into new requests sent on
//! the next attempt; the returned delivery then applies to the events left unreported (a retry
//! or a split encodes those again too, since the request itself is never resent once some of
//! its events are settled).
//!
//! Each request that succeeded marks its events delivered, and each rejection rejects its events
//! under its own reason, in the runner's [`DeliveryProgress`]. The requests still to send are kept
//! in that progress across the runner's retries of the delivery
//! ([`DeliveryProgress::keep_requests`]), so a request that succeeded is never sent again; a
//! delivery without kept requests has only its pending events encoded. Requests are sent one at a time, in the order the plugin returned them.
//!
//! Plugin calls run on tokio's blocking pool (never on an async worker) in the plugin's
//! limits. A fault discards the instance (the next call gets a fresh one) and the events of
//! that call are rejected as `plugin_fault_<kind>`; an `encode` error rejects them as
//! `encode_failed`.

use super::allow::{AllowList, origin};
use super::secrets::Secrets;
use super::telemetry::RequestTelemetry;
use crate::event::{Batch, Event};
use crate::net::http_client::{HttpClient, PreparedRequest, Received};
use crate::ops::metrics::{Component, Metrics};
use crate::output::{DeliveryError, DeliveryProgress, Output, requests};
use crate::plugin::Fault;
use crate::plugin::bindings::{
    Compression, Delivery, HttpRequest, HttpResponse, ItemOutcome, ItemResult, Method,
};
use crate::plugin::filter::MAX_CALL_EVENTS;
use crate::plugin::instance::PluginInstance;
use crate::plugin::startup::StartedPlugin;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait a plugin or a `Retry-After` header can ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The shortest: a plugin answering `retry(0)` must not make the router hammer a destination.
pub const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);
/// Longest detail kept for one rejection, in bytes.
const MAX_DETAIL_BYTES: usize = 512;
/// Headers the router sets itself; a plugin's values for them are ignored.
const ROUTER_HEADERS: &[HeaderName] = &[
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// What the operator grants the plugin's requests, shared with the blocking pool.
pub(crate) struct RequestPolicy {
    /// The output's id, for messages.
    pub(crate) output: String,
    /// The plugin's own name, for messages.
    pub(crate) plugin: String,
    pub(crate) allow: AllowList,
    pub(crate) secrets: Secrets,
    /// Signs each request with SigV4 when the output has `aws_sigv4`.
    pub(crate) signer: Option<crate::net::sigv4::Signer>,
}

/// A plugin of world `output` as an [`Output`].
pub struct WasmOutput {
    plugin: PluginRunner,
    policy: Arc<RequestPolicy>,
    client: HttpClient,
    component: Component,
    metrics: Arc<Metrics>,
    requests: RequestTelemetry,
}

/// The plugin and its (one) instance; calls run on the blocking pool.
pub(crate) struct PluginRunner {
    pub(crate) started: Arc<StartedPlugin>,
    pub(crate) instance: Option<PluginInstance>,
}

impl PluginRunner {
    /// Run `f` on the instance (created and initialised first if there is none) off the async
    /// workers. A fault discards the instance; so does reaching its recycling threshold.
    async fn call<R: Send + 'static>(
        &mut self,
        events: u64,
        f: impl FnOnce(&mut PluginInstance) -> Result<R, Fault> + Send + 'static,
    ) -> Result<R, Fault> {
        let instance = self.instance.take();
        let plugin = self.started.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut instance = match instance {
                Some(instance) => instance,
                None => plugin.new_instance()?,
            };
            let started = Instant::now();
            let result = f(&mut instance);
            Ok::<_, Fault>((instance, result, started.elapsed()))
        })
        .await;
        let telemetry = &self.started.context.telemetry;
        let (instance, result, elapsed) = match joined {
            Ok(Ok(done)) => done,
            Ok(Err(fault)) => {
                telemetry.fault(fault.kind());
                return Err(fault);
            }
            Err(e) => {
                let fault = Fault::Trap {
                    message: format!("the plugin call panicked in the host: {e}"),
                };
                telemetry.fault(fault.kind());
                return Err(fault);
            }
        };
        telemetry.call(events, elapsed);
        telemetry.peak_memory(instance.peak_memory());
        match (&result, instance.recycle_reason()) {
            (Err(fault), _) => {
                telemetry.fault(fault.kind());
                tracing::warn!(plugin = %self.started.context.id, kind = fault.kind(), "plugin fault, instance discarded: {fault}");
            }
            (Ok(_), Some(reason)) => telemetry.recycled(reason),
            (Ok(_), None) => self.instance = Some(instance),
        }
        result
    }
}

/// A request waiting to be sent (again).
struct Pending {
    request: Arc<PreparedRequest>,
    /// Indexes into the batch.
    events: Vec<usize>,
    /// Answered `retry` in this attempt: sent again on the next one.
    deferred: bool,
}

/// Events given up on, and why.
struct Rejection {
    events: Vec<usize>,
    reason: String,
    detail: String,
}

/// The requests an `encode` made, and the events it could not turn into one.
#[derive(Default)]
struct Encoded {
    pending: Vec<Pending>,
    rejected: Vec<Rejection>,
}

/// Why a retry is needed, and when.
struct RetryNote {
    reason: String,
    after: Option<Duration>,
    waiting: usize,
}

/// Record a retry answer: the latest reason, the longest wait (`ms` from the plugin, else
/// the response's `Retry-After`, within [`MIN_RETRY_AFTER`]..[`MAX_RETRY_AFTER`]).
fn note_retry(
    retry: &mut Option<RetryNote>,
    reason: String,
    ms: Option<u32>,
    retry_after: Option<Duration>,
) {
    let after = ms
        .map(|ms| Duration::from_millis(u64::from(ms)))
        .or(retry_after)
        .map(|d| d.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER));
    let note = retry.get_or_insert(RetryNote {
        reason: String::new(),
        after: None,
        waiting: 0,
    });
    note.reason = reason;
    note.after = note.after.max(after);
    note.waiting += 1;
}

/// One answer, described for messages.
struct Answer {
    status: u16,
    /// `HTTP 200` or `transport error: …`.
    text: String,
    /// `POST https://host`.
    target: String,
    retry_after: Option<Duration>,
}

/// Whose reason a rejection has.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ItemReason {
    /// The plugin's, for one event (`mapper_parsing_exception`), as a metric label.
    Plugin(String),
    /// The request's `fail-permanent`: counted as `http_<status>`.
    Status,
}

/// A request's events sorted by their per-event results and, for the rest, the request's
/// delivery.
#[derive(Debug, Default)]
struct ItemSplit {
    delivered: Vec<usize>,
    retry: Vec<usize>,
    retry_ms: Option<u32>,
    failed: std::collections::BTreeMap<ItemReason, (Vec<usize>, String)>,
    /// Results at positions past the request's events.
    unknown: usize,
}

/// Longest reason label taken from a plugin.
const MAX_REASON_LEN: usize = 64;

/// A plugin's reason as a metric label: lowercase ASCII letters, digits and `_`, bounded.
fn reason_label(reason: &str) -> String {
    let label = crate::plugin::guest_metrics::sanitize(reason.trim());
    let label: String = label.chars().take(MAX_REASON_LEN).collect();
    if label.is_empty() {
        "rejected".into()
    } else {
        label
    }
}

/// The events of `request` by their reported results, the unreported ones by `rest`.
fn split_items(request: &Pending, items: Vec<ItemResult>, rest: Delivery) -> ItemSplit {
    let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; request.events.len()];
    let mut split = ItemSplit::default();
    for item in items {
        match outcomes.get_mut(item.position as usize) {
            Some(slot) => {
                slot.get_or_insert(item.outcome);
            }
            None => split.unknown += 1,
        }
    }
    for (outcome, &event) in outcomes.into_iter().zip(&request.events) {
        match outcome {
            Some(ItemOutcome::Delivered) => split.delivered.push(event),
            Some(ItemOutcome::Retry) => split.retry.push(event),
            Some(ItemOutcome::Fail(failure)) => {
                let slot = split
                    .failed
                    .entry(ItemReason::Plugin(reason_label(&failure.reason)))
                    .or_insert_with(|| (Vec::new(), failure.detail));
                slot.0.push(event);
            }
            None => match &rest {
                Delivery::Ok => split.delivered.push(event),
                Delivery::Retry(ms) => {
                    split.retry_ms = *ms;
                    split.retry.push(event);
                }
                Delivery::SplitAndRetry => split.retry.push(event),
                Delivery::FailPermanent(why) => {
                    let slot = split
                        .failed
                        .entry(ItemReason::Status)
                        .or_insert_with(|| (Vec::new(), why.clone()));
                    slot.0.push(event);
                }
            },
        }
    }
    split
}

impl WasmOutput {
    pub(crate) fn new(
        plugin: PluginRunner,
        policy: RequestPolicy,
        client: HttpClient,
        component: Component,
        metrics: Arc<Metrics>,
    ) -> Self {
        WasmOutput {
            requests: RequestTelemetry::new(&metrics, &component.id),
            plugin,
            policy: Arc::new(policy),
            client,
            component,
            metrics,
        }
    }

    /// The plugin's id in logs and metrics.
    pub fn plugin_id(&self) -> &str {
        &self.plugin.started.context.id
    }

    /// Encode the events of `batch` at `subset` and prepare the requests.
    async fn encode(&mut self, batch: &Batch, subset: Vec<usize>) -> Encoded {
        let tag = batch.tag_lossy().into_owned();
        let events: Vec<Event> = subset.iter().map(|&i| batch.events[i].clone()).collect();
        let policy = self.policy.clone();
        let n = events.len() as u64;
        let call_subset = subset.clone();
        let result = self
            .plugin
            .call(n, move |instance| {
                let encoded = instance.encode(&tag, &events)?;
                Ok(encoded.map(|requests| prepare_all(&policy, requests, &call_subset)))
            })
            .await;
        match result {
            Ok(Ok(encoded)) => encoded,
            Ok(Err(message)) => Encoded {
                pending: Vec::new(),
                rejected: vec![Rejection {
                    events: subset,
                    reason: "encode_failed".into(),
                    detail: clip(format!("the plugin's encode refused the events: {message}")),
                }],
            },
            Err(fault) => Encoded {
                pending: Vec::new(),
                rejected: vec![Rejection {
                    events: subset,
                    reason: format!("plugin_fault_{}", fault.kind()),
                    detail: clip(format!("encode faulted: {}", compact(&fault))),
                }],
            },
        }
    }

    /// Send the request at `pos` and act on the plugin's classification of the answer.
    async fn attempt(
        &mut self,
        batch: &Batch,
        delivery: &mut DeliveryProgress,
        pending: &mut Vec<Pending>,
        pos: usize,
        retry: &mut Option<RetryNote>,
    ) {
        let request = pending[pos].request.clone();
        let received = match &self.policy.signer {
            None => self.client.send(&request).await,
            Some(signer) => match signer.sign(&request).await {
                Ok(signed) => self.client.send(&signed).await,
                Err(e) => Err(format!("not sent: cannot sign it with AWS SigV4: {e}")),
            },
        };
        let status = received.as_ref().map_or(0, |r| r.status);
        self.requests.request(request.body.len(), status);
        let target = format!("{} {}", request.method, origin(&request.uri));
        let answer = match &received {
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => format!("transport error: {e}"),
        };
        let retry_after = received.as_ref().ok().and_then(|r| retry_after(&r.headers));
        let response = self.response(request.id, received);
        let answered = self
            .plugin
            .call(0, move |instance| {
                let delivery = instance.on_response(response)?;
                Ok((delivery, instance.take_item_results()))
            })
            .await;
        let destination = origin(&request.uri);
        if matches!(answered, Ok((Delivery::Ok, _))) {
            let events = pending[pos].events.len() as u64;
            requests::request_accepted(&self.metrics, &self.component, &destination, events);
        } else {
            requests::request_failed(&self.metrics, &self.component, &destination);
        }
        let answered = match answered {
            Ok((answered, items)) if !items.is_empty() => {
                let answer = Answer {
                    status,
                    text: answer,
                    target,
                    retry_after,
                };
                self.apply_items(
                    batch, delivery, answered, items, pending, pos, retry, answer,
                )
                .await;
                return;
            }
            other => other.map(|(delivery, _)| delivery),
        };
        match answered {
            Ok(Delivery::Ok) => {
                let done = pending.remove(pos);
                delivery.delivered(done.events);
            }
            Ok(Delivery::Retry(ms)) => {
                self.metrics.error(&self.component, &status_label(status));
                if status == 429 {
                    delivery.throttled();
                }
                pending[pos].deferred = true;
                note_retry(retry, format!("{answer} from {target}"), ms, retry_after);
            }
            Ok(Delivery::FailPermanent(reason)) => {
                let p = pending.remove(pos);
                reject(
                    delivery,
                    Rejection {
                        events: p.events,
                        reason: status_label(status),
                        detail: clip(format!("{target}: {answer}: {reason}")),
                    },
                );
            }
            Ok(Delivery::SplitAndRetry) => {
                let events = pending[pos].events.clone();
                if events.len() <= 1 {
                    let p = pending.remove(pos);
                    reject(
                        delivery,
                        Rejection {
                            events: p.events,
                            reason: "too_large".into(),
                            detail: clip(format!(
                                "{target}: {answer}: a single event is still too large for the destination"
                            )),
                        },
                    );
                    return;
                }
                let (first, second) = events.split_at(events.len() / 2);
                let (first, second) = (first.to_vec(), second.to_vec());
                let mut halves = self.encode(batch, first).await;
                let more = self.encode(batch, second).await;
                halves.pending.extend(more.pending);
                for r in halves.rejected.into_iter().chain(more.rejected) {
                    reject(delivery, r);
                }
                tracing::debug!(plugin = %self.plugin.started.context.id, events = events.len(), requests = halves.pending.len(), "request too large: split in two");
                pending.splice(pos..=pos, halves.pending);
            }
            Err(fault) => {
                let p = pending.remove(pos);
                reject(
                    delivery,
                    Rejection {
                        events: p.events,
                        reason: format!("plugin_fault_{}", fault.kind()),
                        detail: clip(format!(
                            "{target}: {answer}; on-response faulted: {}",
                            compact(&fault)
                        )),
                    },
                );
            }
        }
    }

    /// Act on per-event results (`delivery-items.report`) for the request at `pos`: reported
    /// events are delivered, rejected under their reason, or encoded again into new requests
    /// sent on the next attempt; the request's other events follow `delivery` (a retry or a
    /// split encodes them again too, as the request itself cannot be sent again).
    #[allow(clippy::too_many_arguments)]
    async fn apply_items(
        &mut self,
        batch: &Batch,
        delivery: &mut DeliveryProgress,
        delivery_answer: Delivery,
        items: Vec<ItemResult>,
        pending: &mut Vec<Pending>,
        pos: usize,
        retry: &mut Option<RetryNote>,
        answer: Answer,
    ) {
        let request = pending.remove(pos);
        let split = split_items(&request, items, delivery_answer);
        if split.unknown > 0 {
            tracing::warn!(
                plugin = %self.plugin.started.context.id, events = split.unknown,
                "per-event results at positions past the request's events: ignored (a bug in the plugin)"
            );
        }
        delivery.delivered(split.delivered);
        for (reason, (events, detail)) in split.failed {
            let reason = match reason {
                ItemReason::Plugin(reason) => reason,
                ItemReason::Status => status_label(answer.status),
            };
            reject(
                delivery,
                Rejection {
                    events,
                    reason,
                    detail: clip(format!("{}: {}: {detail}", answer.target, answer.text)),
                },
            );
        }
        if split.retry.is_empty() {
            return;
        }
        self.metrics.error(
            &self.component,
            &format!("{}_items", status_label(answer.status)),
        );
        let waiting = split.retry.len();
        let mut again = self.encode(batch, split.retry).await;
        for r in again.rejected {
            reject(delivery, r);
        }
        for p in &mut again.pending {
            p.deferred = true;
        }
        if !again.pending.is_empty() {
            note_retry(
                retry,
                format!(
                    "{} from {}: {waiting} of the request's events to send again",
                    answer.text, answer.target
                ),
                split.retry_ms,
                answer.retry_after,
            );
        }
        pending.splice(pos..pos, again.pending);
    }

    /// The plugin's view of an answer: secrets scrubbed, transport errors as status 0.
    fn response(&self, id: u32, received: Result<Received, String>) -> HttpResponse {
        match received {
            Ok(r) => {
                let mut body = r.body;
                self.policy.secrets.scrub(&mut body);
                let headers = r
                    .headers
                    .into_iter()
                    .map(|(k, v)| {
                        let mut value = v.into_bytes();
                        self.policy.secrets.scrub(&mut value);
                        (k, String::from_utf8_lossy(&value).into_owned())
                    })
                    .collect();
                HttpResponse {
                    id,
                    status: r.status,
                    headers,
                    body,
                    transport_error: None,
                }
            }
            Err(e) => HttpResponse {
                id,
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
                transport_error: Some(e),
            },
        }
    }
}

impl Output for WasmOutput {
    async fn deliver(
        &mut self,
        batch: &Batch,
        delivery: &mut DeliveryProgress,
    ) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pending = match delivery.take_requests::<Vec<Pending>>() {
            Some(kept) => kept,
            None => {
                // One `encode` call per MAX_CALL_EVENTS events, as filters are called, so a
                // large (merged) batch stays within the plugin's per-call limits.
                let left: Vec<usize> = delivery.pending().collect();
                let mut pending = Vec::new();
                for chunk in left.chunks(MAX_CALL_EVENTS) {
                    let encoded = self.encode(batch, chunk.to_vec()).await;
                    pending.extend(encoded.pending);
                    for r in encoded.rejected {
                        reject(delivery, r);
                    }
                }
                pending
            }
        };
        let mut retry = None;
        while let Some(pos) = pending.iter().position(|r| !r.deferred) {
            self.attempt(batch, delivery, &mut pending, pos, &mut retry)
                .await;
        }
        if pending.is_empty() {
            return Ok(());
        }
        for p in &mut pending {
            p.deferred = false;
        }
        let note = retry.expect("a request waits only after a retry answer");
        let total = pending.len();
        delivery.keep_requests(pending);
        Err(DeliveryError::Retryable {
            reason: format!(
                "{} ({} of the batch's requests waiting, {total} in all)",
                note.reason, note.waiting
            ),
            after: note.after,
        })
    }
}

/// Reject the events of `r` in `delivery` under its reason.
fn reject(delivery: &mut DeliveryProgress, r: Rejection) {
    delivery.reject(r.events, &r.reason, || r.detail);
}

/// The requests of one `encode`, prepared; events no request carries are rejected.
fn prepare_all(policy: &RequestPolicy, requests: Vec<HttpRequest>, subset: &[usize]) -> Encoded {
    let plugin_id = &policy.plugin;
    let mut encoded = Encoded::default();
    let mut covered = vec![false; subset.len()];
    for request in requests {
        let mut events = Vec::with_capacity(request.events.len());
        let mut out_of_range = None;
        for &i in &request.events {
            match subset.get(i as usize) {
                Some(&index) => {
                    covered[i as usize] = true;
                    events.push(index);
                }
                None => out_of_range = Some(i),
            }
        }
        if let Some(i) = out_of_range {
            // A request that names events the batch does not have cannot be counted: give up
            // on everything this encode was asked for.
            return Encoded {
                pending: Vec::new(),
                rejected: vec![Rejection {
                    events: subset.to_vec(),
                    reason: "invalid_request".into(),
                    detail: format!(
                        "plugin {plugin_id}: request {} names event {i} of a batch of {}; a bug in the plugin",
                        request.id,
                        subset.len()
                    ),
                }],
            };
        }
        match prepare(policy, request) {
            Ok(request) => encoded.pending.push(Pending {
                request: Arc::new(request),
                events,
                deferred: false,
            }),
            Err((reason, detail)) => encoded.rejected.push(Rejection {
                events,
                reason: reason.into(),
                detail: clip(detail),
            }),
        }
    }
    let missed: Vec<usize> = covered
        .iter()
        .zip(subset)
        .filter(|(c, _)| !**c)
        .map(|(_, &i)| i)
        .collect();
    if !missed.is_empty() {
        encoded.rejected.push(Rejection {
            detail: format!(
                "plugin {plugin_id}: encode returned no request carrying {} of the {} events",
                missed.len(),
                subset.len()
            ),
            events: missed,
            reason: "not_encoded".into(),
        });
    }
    encoded
}

/// Check one request against the grants, inject its secrets, compress its body.
fn prepare(
    policy: &RequestPolicy,
    request: HttpRequest,
) -> Result<PreparedRequest, (&'static str, String)> {
    let plugin_id = &policy.plugin;
    let invalid = |what: String| {
        (
            "invalid_request",
            format!(
                "plugin {plugin_id}: request {}: {what}; a bug in the plugin",
                request.id
            ),
        )
    };
    let uri: http::Uri = request
        .url
        .parse()
        .map_err(|e| invalid(format!("URL {:?} is not valid ({e})", request.url)))?;
    // Sent as checked: with its path normalised (allow.rs).
    let Some(uri) = policy.allow.permit(&uri) else {
        let origin = origin(&uri);
        tracing::error!(
            plugin = %plugin_id, output = %policy.output, host = %origin, path = %uri.path(),
            "request refused: {origin}{} is not under this output's allow_hosts (paths are compared with `..`, `.` and %-escapes resolved); nothing was sent. If the destination is right, add \"{origin}\" to allow_hosts of output {:?}",
            uri.path(), policy.output
        );
        return Err((
            "host_not_allowed",
            format!(
                "plugin {plugin_id} sent a request to {origin}, which allow_hosts does not grant; add \"{origin}\" to allow_hosts if that destination is intended"
            ),
        ));
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("header name {name:?} is not valid")))?;
        if ROUTER_HEADERS.contains(&name)
            || (name == header::CONTENT_ENCODING && request.compression == Compression::Gzip)
        {
            continue;
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of header {name} is not valid")))?;
        headers.append(name, value);
    }
    for secret in &request.secret_headers {
        let Some(value) = policy.secrets.get(&secret.secret) else {
            let configured: Vec<&str> = policy.secrets.names().collect();
            tracing::error!(
                plugin = %plugin_id, output = %policy.output, secret = %secret.secret,
                "request refused: the plugin asks for secret {:?}, which output {:?} does not configure (it has {configured:?}); add `secrets = {{ {} = \"env:VARIABLE\" }}` to the output",
                secret.secret, policy.output, secret.secret
            );
            return Err((
                "unknown_secret",
                format!(
                    "plugin {plugin_id} asks for secret {:?} in header {}, but the output configures only {configured:?}; add `secrets = {{ {} = \"env:VARIABLE\" }}`",
                    secret.secret, secret.header, secret.secret
                ),
            ));
        };
        let name = HeaderName::from_bytes(secret.header.as_bytes()).map_err(|_| {
            invalid(format!(
                "secret header name {:?} is not valid",
                secret.header
            ))
        })?;
        let mut value =
            HeaderValue::from_str(&format!("{}{value}", secret.prefix)).map_err(|_| {
                invalid(format!(
                    "the prefix of secret header {name} is not valid in a header"
                ))
            })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let body = match request.compression {
        Compression::None => Bytes::from(request.body),
        Compression::Gzip => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Bytes::from(gzip(&request.body))
        }
    };
    let method = match request.method {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
    };
    Ok(PreparedRequest {
        id: request.id,
        method,
        uri,
        headers,
        body,
    })
}

thread_local! {
    /// One deflate state per thread, reset between bodies: setting one up costs more than
    /// compressing a small body.
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), false));
}

/// gzip (RFC 1952) at level 1: log lines compress well already at the fastest level.
fn gzip(body: &[u8]) -> Vec<u8> {
    // ID1 ID2, CM = deflate, no flags, no mtime, XFL 4 = fastest, OS unknown.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];
    let mut out = Vec::with_capacity(body.len() / 4 + 64);
    out.extend_from_slice(&HEADER);
    DEFLATE.with_borrow_mut(|deflate| {
        deflate.reset();
        loop {
            let consumed = usize::try_from(deflate.total_in()).unwrap_or(body.len());
            out.reserve(out.capacity().max(4096));
            let status = deflate
                .compress_vec(&body[consumed..], &mut out, flate2::FlushCompress::Finish)
                .expect("deflate into memory cannot fail");
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
    });
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out
}

/// `Retry-After` as delta-seconds or an HTTP-date.
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The metric reason for an answer: `http_<status>`, or `transport_error`.
fn status_label(status: u16) -> String {
    if status == 0 {
        "transport_error".into()
    } else {
        format!("http_{status}")
    }
}

/// A fault on one line: a trap's message is followed by a wasm backtrace, whose last line
/// says what trapped.
fn compact(fault: &Fault) -> String {
    let text = fault.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [first, .., last] => format!("{} … {last}", first.trim_end_matches(':')),
        _ => text,
    }
}

fn clip(mut text: String) -> String {
    if text.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::SecretHeader;
    use std::collections::BTreeMap;

    fn policy() -> RequestPolicy {
        RequestPolicy {
            output: "dd".into(),
            plugin: "plug".into(),
            allow: AllowList::parse(&["https://intake.example.com".into()]).unwrap(),
            secrets: Secrets::resolve(
                "o",
                &BTreeMap::from([("api_key".to_string(), "env:PATH".to_string())]),
            )
            .unwrap(),
            signer: None,
        }
    }

    fn request(url: &str, events: Vec<u32>) -> HttpRequest {
        HttpRequest {
            id: 7,
            method: Method::Post,
            url: url.into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("content-length".into(), "1".into()),
            ],
            secret_headers: vec![SecretHeader {
                header: "DD-API-KEY".into(),
                secret: "api_key".into(),
                prefix: "Key ".into(),
            }],
            body: b"[{\"log\":\"x\"}]".to_vec(),
            compression: Compression::Gzip,
            events,
        }
    }

    #[test]
    fn requests_are_checked_injected_and_compressed() {
        let p = policy();
        let r = prepare(&p, request("https://intake.example.com/v2", vec![0])).unwrap();
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert!(r.headers.get("content-length").is_none());
        let key = &r.headers["dd-api-key"];
        assert!(key.is_sensitive());
        assert_eq!(
            key.to_str().unwrap(),
            format!("Key {}", std::env::var("PATH").unwrap())
        );
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, "[{\"log\":\"x\"}]");

        let (reason, detail) =
            prepare(&p, request("https://evil.example.net/v2", vec![0])).unwrap_err();
        assert_eq!(reason, "host_not_allowed");
        assert!(
            detail.contains("https://evil.example.net") && detail.contains("allow_hosts"),
            "{detail}"
        );

        let mut r = request("https://intake.example.com/v2", vec![0]);
        r.secret_headers[0].secret = "license".into();
        let (reason, detail) = prepare(&p, r).unwrap_err();
        assert_eq!(reason, "unknown_secret");
        assert!(
            detail.contains("license") && detail.contains("api_key"),
            "{detail}"
        );
    }

    #[test]
    fn events_map_to_the_batch_and_uncovered_ones_are_rejected() {
        let p = policy();
        let subset = [10, 11, 12, 13];
        let e = prepare_all(
            &p,
            vec![
                request("https://intake.example.com/", vec![0, 2]),
                request("https://nope.example.com/", vec![1]),
            ],
            &subset,
        );
        assert_eq!(e.pending.len(), 1);
        assert_eq!(e.pending[0].events, [10, 12]);
        let reasons: Vec<(&str, &[usize])> = e
            .rejected
            .iter()
            .map(|r| (r.reason.as_str(), &r.events[..]))
            .collect();
        assert_eq!(
            reasons,
            [("host_not_allowed", &[11][..]), ("not_encoded", &[13][..])]
        );

        let e = prepare_all(
            &p,
            vec![request("https://intake.example.com/", vec![4])],
            &subset,
        );
        assert_eq!(e.rejected[0].reason, "invalid_request");
        assert_eq!(e.rejected[0].events, subset);
    }

    #[test]
    fn item_results_sort_the_requests_events_and_the_rest_follows_the_delivery() {
        use crate::plugin::bindings::ItemFailure;
        let p = policy();
        let encoded = prepare_all(
            &p,
            vec![request("https://intake.example.com/", vec![0, 1, 2, 3, 4])],
            &[10, 11, 12, 13, 14],
        );
        let request = &encoded.pending[0];
        let item = |position, outcome| ItemResult { position, outcome };
        let fail = |reason: &str| {
            ItemOutcome::Fail(ItemFailure {
                reason: reason.into(),
                detail: "failed to parse".into(),
            })
        };
        let split = split_items(
            request,
            vec![
                item(0, ItemOutcome::Delivered),
                item(1, ItemOutcome::Retry),
                item(2, fail("Mapper Parsing-Exception")),
                item(0, ItemOutcome::Retry), // the first result for a position counts
                item(9, ItemOutcome::Delivered),
            ],
            Delivery::Retry(Some(250)),
        );
        assert_eq!(split.delivered, [10]);
        assert_eq!(split.retry, [11, 13, 14]);
        assert_eq!(split.retry_ms, Some(250));
        assert_eq!(split.unknown, 1);
        let failed: Vec<_> = split.failed.iter().collect();
        assert_eq!(
            failed,
            [(
                &ItemReason::Plugin("mapper_parsing_exception".into()),
                &(vec![12], "failed to parse".to_string())
            )]
        );

        let split = split_items(
            request,
            vec![item(4, ItemOutcome::Delivered)],
            Delivery::FailPermanent("HTTP 200: refused".into()),
        );
        assert_eq!(split.delivered, [14]);
        assert_eq!(split.failed[&ItemReason::Status].0, [10, 11, 12, 13]);
        assert_eq!(reason_label(""), "rejected");
        assert_eq!(reason_label(&"x".repeat(100)).len(), MAX_REASON_LEN);
    }

    #[test]
    fn gzip_bodies_decode_whatever_their_size() {
        let big: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        for body in [&b""[..], b"one line", &big, b"again, after a large one"] {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&gzip(body)[..]),
                &mut plain,
            )
            .unwrap();
            assert!(plain == body, "{} bytes", body.len());
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let h = |v: &str| vec![("Retry-After".to_string(), v.to_string())];
        assert_eq!(retry_after(&h("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&h("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h("soon")), None);
        assert_eq!(retry_after(&[]), None);
    }
}
