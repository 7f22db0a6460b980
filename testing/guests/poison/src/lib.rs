//! Test guest `poison`: keeps every event, except that an event whose record has a `poison`
//! field makes it panic (a trap that faults the whole call, the case poison-event isolation
//! narrows down).

use wasm_router_sdk::{Ctx, Event, NoConfig, Outcome, filter};

#[filter(
    name = "poison",
    description = "Keeps events; panics on an event with a `poison` field."
)]
fn poison(_: &NoConfig, event: &Event<'_>, _: &mut Ctx) -> Outcome {
    if event.get("poison").is_some() {
        panic!("poison guest: this event is marked poison");
    }
    Outcome::Keep
}
