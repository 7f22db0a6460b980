//! `sample.jsonl`, configured by `sample-config.json`, encodes to requests that carry every
//! event once: the same files `wasm-router test` runs the built component with
//! (`--input sample.jsonl --config sample-config.json --responses responses.jsonl`).

use wasm_router_sdk::PluginConfig;
use wasm_router_sdk::output::{Delivery, Output, Response};
use wasm_router_sdk::testing::{self, TestBatch};

#[test]
fn sample_encodes_to_requests_carrying_every_event() {
    let output = my_output::MyOutput::from_json(include_str!("../sample-config.json")).unwrap();
    let sample = testing::events_from_jsonl(include_str!("../sample.jsonl")).unwrap();
    let requests = output.encode(&TestBatch::new(&sample).view()).unwrap();
    let carried: Vec<u32> = requests.iter().flat_map(|r| r.events.clone()).collect();
    assert_eq!(carried, (0..sample.len() as u32).collect::<Vec<_>>());
    assert!(requests.iter().all(|r| r.url == output.url));

    let response = |status| Response {
        id: requests[0].id,
        status,
        headers: &[],
        body: b"",
        transport_error: None,
    };
    assert_eq!(output.on_response(&response(202)), Delivery::Ok);
    assert_eq!(output.on_response(&response(413)), Delivery::SplitAndRetry);
}
