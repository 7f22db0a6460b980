//! Test guest `sdk-keep-all`: keeps every event, through the SDK's per-event loop (the
//! baseline that shows what the SDK adds over a bare `keep-all`).

use wasm_router_sdk::{Ctx, Event, NoConfig, Outcome, filter};

#[filter(
    name = "sdk-keep-all",
    description = "Keeps every event (SDK baseline)."
)]
fn keep(_: &NoConfig, _: &Event<'_>, _: &mut Ctx) -> Outcome {
    Outcome::Keep
}
