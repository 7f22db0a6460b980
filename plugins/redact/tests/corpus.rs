//! The redact filter against a corpus of positive and negative cases per detector, run through
//! the SDK's native harness (the same `init` + batch loop as the component).

use redact::redact;
use serde_json::{Value as Json, json};
use wasm_router_sdk::Outcome;
use wasm_router_sdk::testing::{self, TestEvent};

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn run(config: &str, record: Json) -> Json {
    let run = testing::run_filter(redact, config, &[TestEvent::json(record)]).unwrap();
    assert!(
        !matches!(run.outcomes()[0], Outcome::Error(_)),
        "{:?}",
        run.outcomes()
    );
    run.records().remove(0)
}

/// `text` as the `log` field after the default config.
fn redacted(text: &str) -> String {
    run("{}", json!({ "log": text }))["log"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assert_cases(cases: &[(&str, &str)]) {
    for (input, expected) in cases {
        assert_eq!(redacted(input), *expected, "input: {input}");
    }
}

fn assert_untouched(inputs: &[&str]) {
    for input in inputs {
        let run =
            testing::run_filter(redact, "{}", &[TestEvent::json(json!({ "log": input }))]).unwrap();
        assert_eq!(run.outcomes(), [Outcome::Keep], "input: {input}");
    }
}

#[test]
fn emails() {
    assert_cases(&[
        (
            "contact john.doe@example.com now",
            "contact [REDACTED:email] now",
        ),
        ("mailto:a+b@sub.example.co.uk", "mailto:[REDACTED:email]"),
        (
            "https://example.com/reset?email=jane%40example.org&x=1",
            "https://example.com/reset?email=[REDACTED:email]&x=1",
        ),
        (
            "https://app.example.com/users/bob@corp.example.com/profile",
            "https://app.example.com/users/[REDACTED:email]/profile",
        ),
        ("<OPS@Example.COM>", "<[REDACTED:email]>"),
    ]);
    assert_untouched(&[
        "user@localhost",
        "@example.com",
        "deploy at 10:00@rack",
        "a@b.c",
    ]);
}

#[test]
fn card_numbers() {
    assert_cases(&[
        (
            "card 4111 1111 1111 1111 ok",
            "card [REDACTED:credit_card] ok",
        ),
        ("mc 5500-0000-0000-0004", "mc [REDACTED:credit_card]"),
        ("amex=378282246310005;", "amex=[REDACTED:credit_card];"),
        (
            "2024-01-15 4111111111111111 paid",
            "2024-01-15 [REDACTED:credit_card] paid",
        ),
        (
            "discover 6011111111111117",
            "discover [REDACTED:credit_card]",
        ),
    ]);
    assert_untouched(&[
        "card 4111 1111 1111 1112",      // Luhn fails
        "ts 1700000000000000000",        // nanoseconds start with 1
        "order 41111111111111111111111", // longer than 19 digits
        "id-4111111111111111x",          // glued to a letter
        "phone 555-123-4567",
    ]);
}

#[test]
fn card_numbers_stored_as_integers() {
    let out = run(
        "{}",
        json!({"pan": 4111111111111111u64, "count": 42, "ts": 1700000000000000000u64}),
    );
    assert_eq!(
        out,
        json!({"pan": "[REDACTED:credit_card]", "count": 42, "ts": 1700000000000000000u64})
    );
}

#[test]
fn social_security_numbers() {
    assert_cases(&[("ssn 123-45-6789.", "ssn [REDACTED:ssn].")]);
    assert_untouched(&[
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",
        "2023-45-6789",
        "ref 123-45-6789-01",
    ]);
}

#[test]
fn ipv4_addresses() {
    assert_cases(&[
        (
            "client 192.168.1.20 connected",
            "client [REDACTED:ipv4] connected",
        ),
        ("upstream 10.0.0.1:8080", "upstream [REDACTED:ipv4]:8080"),
        ("from=255.255.255.255,", "from=[REDACTED:ipv4],"),
    ]);
    assert_untouched(&[
        "version 1.2.3.4.5",
        "oid 1.3.6.1.4.1",
        "bad 999.1.1.1",
        "v1.2.3.4",
        "pi 3.14159",
        "1.2.3",
    ]);
}

#[test]
fn ipv6_addresses() {
    assert_cases(&[
        ("peer 2001:db8::8a2e:370:7334 up", "peer [REDACTED:ipv6] up"),
        (
            "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "full [REDACTED:ipv6]",
        ),
        ("mapped ::ffff:192.0.2.128.", "mapped [REDACTED:ipv6]."),
        ("link fe80::1%eth0", "link [REDACTED:ipv6]%eth0"),
        ("[2001:db8::1]:443", "[[REDACTED:ipv6]]:443"),
    ]);
    assert_untouched(&[
        "at 12:34:56",
        "std::vector<int>",
        "mac 00:1a:2b:3c:4d:5e",
        "Foo::Bar::baz()",
        "a :: b",
    ]);
}

#[test]
fn aws_access_key_ids() {
    assert_cases(&[
        (
            "key AKIAIOSFODNN7EXAMPLE used",
            "key [REDACTED:aws_access_key] used",
        ),
        ("\"ASIAY34FZKBOKMUTVV7A\"", "\"[REDACTED:aws_access_key]\""),
    ]);
    assert_untouched(&[
        "AKIAIOSFODNN7EXAMPL",
        "XAKIAIOSFODNN7EXAMPLE",
        "akiaiosfodnn7example",
        "AKIAIOSFODNN7EXAMPLEX",
    ]);
}

#[test]
fn aws_secret_keys() {
    assert_cases(&[
        (
            &format!("aws_secret_access_key = {SECRET}"),
            "aws_secret_access_key = [REDACTED:aws_secret_key]",
        ),
        (
            &format!(r#"{{"AccessKeyId":"ASIAY34FZKBOKMUTVV7A","SecretAccessKey":"{SECRET}"}}"#),
            r#"{"AccessKeyId":"[REDACTED:aws_access_key]","SecretAccessKey":"[REDACTED:aws_secret_key]"}"#,
        ),
        (
            &format!("creds {SECRET} end"),
            "creds [REDACTED:aws_secret_key] end",
        ),
        (
            &format!(r#"{{\"secret_key\": \"{SECRET}\"}}"#),
            r#"{\"secret_key\": \"[REDACTED:aws_secret_key]\"}"#,
        ),
    ]);
    assert_untouched(&[
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "/var/lib/docker/overlay2/Abc123def456/merged/etc",
        "token wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX",
        "ALLUPPERCASEANDDIGITS1234567890ABCDEFGHIJ",
    ]);
}

#[test]
fn bearer_tokens_and_jwts() {
    assert_cases(&[
        (
            "Authorization: Bearer abcdef0123456789.xyz",
            "Authorization: Bearer [REDACTED:bearer_token]",
        ),
        (
            &format!("authorization: bearer {JWT}"),
            "authorization: bearer [REDACTED:jwt]",
        ),
        (
            &format!("session={JWT}; path=/"),
            "session=[REDACTED:jwt]; path=/",
        ),
    ]);
    assert_untouched(&[
        "WWW-Authenticate: Bearer realm",
        "unbearable abcdefghijkl",
        "eyJhbGciOiJIUzI1NiJ9 alone",
    ]);
}

#[test]
fn nested_maps_and_arrays_are_scanned_keys_are_not() {
    let out = run(
        "{}",
        json!({
            "k": {"labels": {"owner": "ops@example.com", "10.0.0.1": "key"}},
            "list": ["ok", "10.1.2.3", {"deep": ["4111111111111111"]}],
            "n": 1.5, "flag": true, "none": null
        }),
    );
    assert_eq!(
        out,
        json!({
            "k": {"labels": {"owner": "[REDACTED:email]", "10.0.0.1": "key"}},
            "list": ["ok", "[REDACTED:ipv4]", {"deep": ["[REDACTED:credit_card]"]}],
            "n": 1.5, "flag": true, "none": null
        })
    );
}

#[test]
fn non_utf8_bytes_are_kept_around_masks() {
    let mut body = vec![0x82];
    wasm_router_sdk::msgpack::write_str(&mut body, b"log");
    wasm_router_sdk::msgpack::write_str(&mut body, b"\xff\xfe mail a.b@example.com \xc3 end");
    wasm_router_sdk::msgpack::write_str(&mut body, b"raw");
    wasm_router_sdk::msgpack::write_str(&mut body, b"\x80\x81 no secrets");
    let run = testing::run_filter(redact, "{}", &[TestEvent::msgpack(body)]).unwrap();
    let out = &run.events()[0];
    assert_eq!(
        out.event().get_bytes("log"),
        Some(&b"\xff\xfe mail [REDACTED:email] \xc3 end"[..])
    );
    assert_eq!(
        out.event().get_bytes("raw"),
        Some(&b"\x80\x81 no secrets"[..])
    );
}

#[test]
fn fields_limit_the_scan() {
    let config = r#"{"fields": ["log", "request.headers", ["labels", "app.kubernetes.io/owner"]]}"#;
    let out = run(
        config,
        json!({
            "log": "from 10.0.0.1",
            "other": "from 10.0.0.2",
            "request": {"headers": {"authorization": "Bearer abcdefgh12345678"}, "ip": "10.0.0.3"},
            "labels": {"app.kubernetes.io/owner": "dev@example.com"}
        }),
    );
    assert_eq!(
        out,
        json!({
            "log": "from [REDACTED:ipv4]",
            "other": "from 10.0.0.2",
            "request": {"headers": {"authorization": "Bearer [REDACTED:bearer_token]"}, "ip": "10.0.0.3"},
            "labels": {"app.kubernetes.io/owner": "[REDACTED:email]"}
        })
    );
    let clean = testing::run_filter(
        redact,
        config,
        &[TestEvent::json(json!({"log": "fine", "other": "a@b.com"}))],
    )
    .unwrap();
    assert_eq!(clean.outcomes(), [Outcome::Keep]);
}

#[test]
fn mask_styles() {
    let last4 = run(
        r#"{"mask": {"style": "keep_last4"}}"#,
        json!({"log": "card 4111 1111 1111 1111, ssn 123-45-6789"}),
    );
    assert_eq!(last4["log"], "card **** **** **** 1111, ssn ***-**-6789");
    let config = r#"{"mask": {"style": "hash", "salt": "pepper", "hash_length": 12}}"#;
    let hashed = run(
        config,
        json!({"a": "john@example.com", "b": "john@example.com", "c": "jane@example.com"}),
    );
    let a = hashed["a"].as_str().unwrap();
    assert!(
        a.starts_with("[REDACTED:email:") && a.len() == "[REDACTED:email:]".len() + 12,
        "{a}"
    );
    assert_eq!(hashed["a"], hashed["b"]);
    assert_ne!(hashed["a"], hashed["c"]);
}

#[test]
fn custom_patterns_mask_the_value_group_or_the_match() {
    let config = r#"{"custom_patterns": [
        {"name": "password", "pattern": "password=(?P<value>[^&\\s]+)"},
        {"name": "employee", "pattern": "EMP-[0-9]{6}"}
    ]}"#;
    let out = run(
        config,
        json!({"log": "login password=hunter2&user=x by EMP-123456"}),
    );
    assert_eq!(
        out["log"],
        "login password=[REDACTED:password]&user=x by [REDACTED:employee]"
    );
}

#[test]
fn detectors_can_be_switched_off() {
    let out = run(
        r#"{"detectors": {"ipv4": false, "email": false}}"#,
        json!({"log": "10.0.0.1 a@example.com AKIAIOSFODNN7EXAMPLE"}),
    );
    assert_eq!(
        out["log"],
        "10.0.0.1 a@example.com [REDACTED:aws_access_key]"
    );
}

#[test]
fn counters_per_detector() {
    testing::reset();
    run("{}", json!({"log": "a@example.com b@example.com 10.0.0.1"}));
    assert_eq!(testing::counter("redacted_email"), 2);
    assert_eq!(testing::counter("redacted_ipv4"), 1);
    assert_eq!(testing::counter("events_redacted"), 1);
}

#[test]
fn config_errors_point_at_the_problem() {
    let cases = [
        (r#"{"mask": {"style": "hash"}}"#, "/mask/salt"),
        (
            r#"{"mask": {"style": "hash", "salt": "s", "hash_length": 2}}"#,
            "/mask/hash_length",
        ),
        (r#"{"mask": {"salt": "s"}}"#, "/mask/salt"),
        (r#"{"mask": {"style": "rot13"}}"#, "/mask/style"),
        (r#"{"detectors": {"phone": true}}"#, "/detectors/phone"),
        (
            r#"{"custom_patterns": [{"name": "ok", "pattern": "a"}, {"name": "bad", "pattern": "(unclosed"}]}"#,
            "/custom_patterns/1/pattern",
        ),
        (
            r#"{"custom_patterns": [{"name": "empty", "pattern": "x*"}]}"#,
            "/custom_patterns/0/pattern",
        ),
        (
            r#"{"custom_patterns": [{"name": "has space", "pattern": "x"}]}"#,
            "/custom_patterns/0/name",
        ),
        (r#"{"fields": ["log", "a..b"]}"#, "/fields/1"),
        (
            r#"{"custom_patterns": [{"name": "greek", "pattern": "\\p{Greek}+"}]}"#,
            "/custom_patterns/0/pattern",
        ),
        (r#"{"colour": 1}"#, "/colour"),
    ];
    for (config, path) in cases {
        let errors = testing::run_filter(redact, config, &[]).unwrap_err();
        assert!(
            errors.iter().any(|e| e.path == path),
            "{config}: {errors:?}"
        );
    }
}

#[test]
fn malformed_and_too_deep_records_are_errors_so_the_router_fails_closed() {
    let mut deep = json!("leaf");
    for _ in 0..80 {
        deep = json!([deep]);
    }
    let events = [
        TestEvent::msgpack(vec![0x82, 0xa1, b'a', 0x01]),
        TestEvent::json(json!({ "deep": deep })),
    ];
    let run = testing::run_filter(redact, "{}", &events).unwrap();
    assert!(
        matches!(&run.outcomes()[0], Outcome::Error(m) if m.contains("msgpack")),
        "{:?}",
        run.outcomes()[0]
    );
    assert!(
        matches!(&run.outcomes()[1], Outcome::Error(m) if m.contains("deeper than 64")),
        "{:?}",
        run.outcomes()[1]
    );
}

#[test]
fn clean_records_are_kept_without_a_copy() {
    let run = testing::run_filter(
        redact,
        "{}",
        &[TestEvent::json(json!({
            "log": "2024-01-15T10:00:00.123Z INFO GET /api/orders/12345 200 12ms",
            "container_id": "4f9d6c5e7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e",
            "source": "stdout"
        }))],
    )
    .unwrap();
    assert_eq!(run.outcomes(), [Outcome::Keep]);
}
