//! The `dummy` input end to end: its record reaches the output `samples` times, and no more.

use crate::common::{self, RouterProcess};
use serde_json::json;
use std::time::Duration;

#[test]
fn the_dummy_record_arrives_samples_times() {
    let http = common::free_port();
    let router = RouterProcess::start(&format!(
        "[service]\nhttp_listen = \"127.0.0.1:{http}\"\n\
         [[inputs]]\ntype = \"dummy\"\ntag = \"dummy.data\"\ndummy = '{{\"data\":\"100 0.5 true This is Demo\"}}'\nrate = 50\ncopies = 2\nsamples = 7\n\
         [[outputs]]\ntype = \"stdout\"\nmatch = \"dummy.*\"\n"
    ));
    router.wait_for_events(7);
    // Three ticks later there are still seven.
    std::thread::sleep(Duration::from_millis(60));
    let events = router.events();
    assert_eq!(events.len(), 7, "{events:?}");
    for e in &events {
        assert_eq!(e.tag, "dummy.data");
        assert_eq!(e.record, json!({"data": "100 0.5 true This is Demo"}));
    }
    let samples = common::scrape(&router.http_addr());
    let received = wasm_router::ops::prometheus_text::sum(
        &samples,
        "component_received_events_total",
        &[("component_id", "dummy")],
    );
    assert_eq!(received, 7.0);
}
