//! The glue between the WIT exports and plugin code, called by what `#[filter]` and
//! `#[output]` expand to: config storage, `info`, `init`, the per-batch loop, and conversion
//! between SDK and WIT types. The [`crate::testing`] harness drives the same functions.

use crate::bindings::filter::wasm_router::plugin::types as wit;
use crate::bindings::output_types::wasm_router::plugin::http_types as wit_http;
use crate::config::PluginConfig;
use crate::context::Ctx;
use crate::event::{Batch, Event};
use crate::outcome::{IntoOutcome, IntoOutcomes, Outcome, Patch};
use crate::output::{Delivery, Method, Output, Request, Response};
use std::sync::RwLock;

/// What a plugin says about itself, from the attribute macro's arguments.
#[derive(Debug, Clone, Copy)]
pub struct PluginMeta {
    /// Short name (`redact`).
    pub name: &'static str,
    /// The plugin's version (semver).
    pub version: &'static str,
    /// One sentence.
    pub description: &'static str,
    /// Whether the plugin asks the router to fail closed (drop, not pass, events it could not
    /// process): stated in the config schema as `"x-wasm-router": {"on_error": "fail_closed"}`.
    pub fail_closed: bool,
    /// URL prefixes an output wants to reach.
    pub requested_hosts: &'static [&'static str],
    /// Names of the secrets an output wants injected into headers.
    pub requested_secrets: &'static [&'static str],
}

/// The instance's config, set by `init`.
pub struct ConfigSlot<C> {
    config: RwLock<Option<C>>,
}

impl<C> ConfigSlot<C> {
    /// An empty slot (before `init`).
    pub const fn new() -> Self {
        ConfigSlot {
            config: RwLock::new(None),
        }
    }

    fn set(&self, config: C) {
        *self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(config);
    }

    fn with<R>(&self, f: impl FnOnce(Option<&C>) -> R) -> R {
        let guard = self
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(guard.as_ref())
    }
}

impl<C> Default for ConfigSlot<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// The message for events processed before `init` succeeded.
const NOT_INITIALISED: &str = "the plugin was called before init succeeded";

/// The config schema as `info` reports it, with the plugin's hints added.
pub fn config_schema<C: PluginConfig>(meta: &PluginMeta) -> String {
    let mut schema = C::json_schema();
    if meta.fail_closed
        && let Some(object) = schema.as_object_mut()
    {
        object.insert(
            "x-wasm-router".into(),
            serde_json::json!({"on_error": "fail_closed"}),
        );
    }
    schema.to_string()
}

/// `info` for a plugin of `kind`.
pub fn info<C: PluginConfig>(meta: &PluginMeta, kind: wit::PluginKind) -> wit::PluginInfo {
    wit::PluginInfo {
        name: meta.name.into(),
        version: meta.version.into(),
        kind,
        description: meta.description.into(),
        config_schema: config_schema::<C>(meta),
        requested_hosts: meta
            .requested_hosts
            .iter()
            .map(|host| (*host).into())
            .collect(),
        requested_secrets: meta
            .requested_secrets
            .iter()
            .map(|secret| (*secret).into())
            .collect(),
    }
}

/// `info` of a filter.
pub fn filter_info<C: PluginConfig>(meta: &PluginMeta) -> wit::PluginInfo {
    info::<C>(meta, wit::PluginKind::Filter)
}

/// `info` of an output.
pub fn output_info<C: PluginConfig>(meta: &PluginMeta) -> wit::PluginInfo {
    info::<C>(meta, wit::PluginKind::Output)
}

/// `init`: parses the config and stores it (replacing any earlier one).
pub fn init<C: PluginConfig>(
    slot: &ConfigSlot<C>,
    json: &str,
) -> Result<(), Vec<wit::ConfigError>> {
    match C::from_json(json) {
        Ok(config) => {
            slot.set(config);
            Ok(())
        }
        Err(errors) => Err(errors
            .into_iter()
            .map(|error| wit::ConfigError {
                path: error.path,
                message: error.message,
            })
            .collect()),
    }
}

fn patch_to_wit(patch: Patch) -> wit::EventPatch {
    wit::EventPatch {
        tag: patch.tag,
        time_ns: patch.time_ns,
        body: patch.body,
    }
}

/// An SDK outcome as the WIT variant (`Keep` and `Drop` allocate nothing).
pub fn outcome_to_wit(outcome: Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Keep => wit::Outcome::Keep,
        Outcome::Drop => wit::Outcome::Drop,
        Outcome::Replace(patch) => wit::Outcome::Replace(patch_to_wit(patch)),
        Outcome::Expand(patches) => {
            wit::Outcome::Expand(patches.into_iter().map(patch_to_wit).collect())
        }
        Outcome::Error(message) => wit::Outcome::Error(message),
    }
}

fn view(batch: &wit::Batch) -> Result<Batch<'_>, String> {
    Batch::new(&batch.tag, &batch.time_ns, &batch.body_ends, &batch.bodies)
        .map_err(|error| format!("malformed batch: {error}"))
}

fn every_event(batch: &wit::Batch, message: &str) -> Vec<wit::Outcome> {
    vec![wit::Outcome::Error(message.to_owned()); batch.time_ns.len()]
}

/// `process` of a per-event filter: calls `filter` on each event, in order.
pub fn process_each<C, R, F>(
    slot: &ConfigSlot<C>,
    batch: &wit::Batch,
    filter: F,
) -> Vec<wit::Outcome>
where
    R: IntoOutcome,
    F: Fn(&C, &Event<'_>, &mut Ctx) -> R,
{
    let batch_view = match view(batch) {
        Ok(view) => view,
        Err(message) => return every_event(batch, &message),
    };
    slot.with(|config| {
        let Some(config) = config else {
            return every_event(batch, NOT_INITIALISED);
        };
        let mut ctx = Ctx::new();
        let mut outcomes = Vec::with_capacity(batch_view.len());
        for event in batch_view.events() {
            outcomes.push(outcome_to_wit(
                filter(config, &event, &mut ctx).into_outcome(),
            ));
        }
        ctx.flush();
        outcomes
    })
}

/// `process` of a per-batch filter. A function returning the wrong number of outcomes gets
/// its list cut or padded with errors (and an error log line), so the router never sees a
/// length mismatch from an SDK plugin.
pub fn process_batch<C, R, F>(
    slot: &ConfigSlot<C>,
    batch: &wit::Batch,
    filter: F,
) -> Vec<wit::Outcome>
where
    R: IntoOutcomes,
    F: Fn(&C, &Batch<'_>, &mut Ctx) -> R,
{
    let batch_view = match view(batch) {
        Ok(view) => view,
        Err(message) => return every_event(batch, &message),
    };
    slot.with(|config| {
        let Some(config) = config else {
            return every_event(batch, NOT_INITIALISED);
        };
        let mut ctx = Ctx::new();
        let result = filter(config, &batch_view, &mut ctx).into_outcomes();
        ctx.flush();
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(message) => return every_event(batch, &message),
        };
        let expected = batch_view.len();
        if outcomes.len() != expected {
            crate::log::error!(
                "the filter returned {} outcomes for {expected} events",
                outcomes.len()
            );
        }
        let got = outcomes.len();
        let mut converted: Vec<wit::Outcome> = outcomes
            .into_iter()
            .take(expected)
            .map(outcome_to_wit)
            .collect();
        converted.resize_with(expected, || {
            wit::Outcome::Error(format!(
                "the filter returned {got} outcomes for {expected} events"
            ))
        });
        converted
    })
}

fn request_to_wit(request: Request) -> wit_http::HttpRequest {
    wit_http::HttpRequest {
        id: request.id,
        method: match request.method {
            Method::Get => wit_http::Method::Get,
            Method::Post => wit_http::Method::Post,
            Method::Put => wit_http::Method::Put,
        },
        url: request.url,
        headers: request.headers,
        secret_headers: request
            .secret_headers
            .into_iter()
            .map(|h| wit_http::SecretHeader {
                header: h.header,
                secret: h.secret,
                prefix: h.prefix,
            })
            .collect(),
        body: request.body,
        compression: if request.gzip {
            wit_http::Compression::Gzip
        } else {
            wit_http::Compression::None
        },
        events: request.events,
    }
}

/// `encode` of an output.
pub fn encode<O: Output>(
    slot: &ConfigSlot<O>,
    batch: &wit::Batch,
) -> Result<Vec<wit_http::HttpRequest>, String> {
    let batch_view = view(batch)?;
    slot.with(|output| {
        let output = output.ok_or(NOT_INITIALISED)?;
        let requests = output
            .encode(&batch_view)
            .map_err(|error| error.to_string())?;
        Ok(requests.into_iter().map(request_to_wit).collect())
    })
}

/// `on-response` of an output.
pub fn on_response<O: Output>(
    slot: &ConfigSlot<O>,
    response: &wit_http::HttpResponse,
) -> wit_http::Delivery {
    let view = Response {
        id: response.id,
        status: response.status,
        headers: &response.headers,
        body: &response.body,
        transport_error: response.transport_error.as_deref(),
    };
    let delivery = slot.with(|output| match output {
        Some(output) => output.on_response(&view),
        None => Delivery::Retry(None),
    });
    match delivery {
        Delivery::Ok => wit_http::Delivery::Ok,
        Delivery::Retry(after) => wit_http::Delivery::Retry(after),
        Delivery::FailPermanent(reason) => wit_http::Delivery::FailPermanent(reason),
        Delivery::SplitAndRetry => wit_http::Delivery::SplitAndRetry,
    }
}
