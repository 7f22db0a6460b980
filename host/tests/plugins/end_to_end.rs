//! Forward protocol in → WASM filters → stdout out, through the real `wasm-router` binary.

use super::support::cache_dir;
use crate::common::{self, RouterProcess};
use serde_json::json;
use std::io::Write;

#[test]
fn forward_events_pass_through_a_wasm_filter_and_a_faulting_plugin_harms_nothing_else() {
    let config = format!(
        r#"
[service]
grace = "5s"
plugin_cache_dir = "{cache}"

[[inputs]]
type = "forward"
listen = "127.0.0.1:0"

[[filters]]
type = "wasm"
match = "app.*"
path = "{digit_mask}"

[[filters]]
type = "wasm"
match = "bad.*"
path = "{trap}"
on_error = "fail_closed"

[[outputs]]
type = "stdout"
match = "*"
"#,
        cache = cache_dir().display(),
        digit_mask = wasm_router_test_artifacts::DIGIT_MASK,
        trap = wasm_router_test_artifacts::TRAP,
    );
    let router = RouterProcess::start(&config);
    let mut conn = std::net::TcpStream::connect(router.tcp_addr()).unwrap();
    let send = |conn: &mut std::net::TcpStream, tag: &str, time_ns: u64, log: &str| {
        let frame = common::message_frame(
            tag.as_bytes(),
            time_ns,
            &common::msgpack(&json!({"log": log})),
            Some(&format!("c{time_ns}")),
        );
        conn.write_all(&frame).unwrap();
        common::expect_ack(conn, &format!("c{time_ns}"));
    };
    send(&mut conn, "app.web", 1_000, "card 4111 1111 1111 1111");
    send(&mut conn, "other.db", 2_000, "order 42");
    send(&mut conn, "bad.job", 3_000, "pin 1234");
    send(&mut conn, "app.web", 4_000, "after the fault: 7");
    router.wait_for_events(3);
    let log = router.wait_for_log("the fault", |l| l.contains("plugin fault"));
    assert!(log.contains("trap"), "{log}");
    let events = router.stop();
    let got: Vec<(String, u64, serde_json::Value)> = events
        .into_iter()
        .map(|e| (e.tag, e.time_ns, e.record))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "app.web".to_string(),
                1_000,
                json!({"log": "card **** **** **** ****"})
            ),
            ("other.db".to_string(), 2_000, json!({"log": "order 42"})),
            (
                "app.web".to_string(),
                4_000,
                json!({"log": "after the fault: *"})
            ),
        ]
    );
}
