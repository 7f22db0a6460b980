//! Test guest `poison`: keeps every event, except that one whose record has
//! `"poison": "panic"` makes the call panic (a trap that faults the whole call) and one with
//! `"poison": "refuse"` makes it refuse the whole batch (the same `error` for every event, as
//! an SDK batch filter returning `Err` does): the two cases poison-event isolation narrows down.

use wasm_router_sdk::{Batch, Ctx, NoConfig, Outcome, filter};

#[filter(
    batch,
    name = "poison",
    description = "Keeps events; panics on an event with \"poison\": \"panic\", refuses the batch for \"poison\": \"refuse\"."
)]
fn poison(_: &NoConfig, batch: &Batch<'_>, _: &mut Ctx) -> Vec<Outcome> {
    for event in batch.events() {
        match event.get_str("poison").as_deref() {
            Some("panic") => panic!("poison guest: this event is marked poison"),
            Some("refuse") => {
                let refused =
                    Outcome::Error("poison guest: a marked event refuses the batch".into());
                return vec![refused; batch.len()];
            }
            _ => {}
        }
    }
    vec![Outcome::Keep; batch.len()]
}
