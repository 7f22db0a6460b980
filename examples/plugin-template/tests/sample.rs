//! `sample.jsonl` through the filter, configured by `sample-config.json`, gives
//! `expected.jsonl`: the same files `wasm-router test` checks the built component with
//! (`--input sample.jsonl --config sample-config.json --expect expected.jsonl`).

use wasm_router_sdk::testing;

#[test]
fn sample_gives_expected() {
    let config = include_str!("../sample-config.json");
    let sample = testing::events_from_jsonl(include_str!("../sample.jsonl")).unwrap();
    let expected = testing::events_from_jsonl(include_str!("../expected.jsonl")).unwrap();
    let run = testing::run_filter(my_filter::my_filter, config, &sample).unwrap();
    let out: Vec<String> = run
        .events()
        .iter()
        .map(|e| e.event().to_json().unwrap())
        .collect();
    let want: Vec<String> = expected
        .iter()
        .map(|e| e.event().to_json().unwrap())
        .collect();
    assert_eq!(out, want);
}
