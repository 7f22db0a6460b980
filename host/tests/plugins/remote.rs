//! Plugins fetched at start-up instead of mounted: from S3 (moto), from an OCI registry on
//! loopback (Debian's docker-registry, pushed to with PyPI oras) by digest, and from S3 through
//! an `aws_fluent_bit_init_s3_N` variable into the plugin directory of a classic config. Pins
//! are checked, and a router whose plugins are in its cache starts again with both gone.

use crate::common::aws::{self, Moto};
use crate::common::oci::Registry;
use crate::common::{self, RouterProcess};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use wasm_router::plugin::cache::sha256_hex;

const BUCKET: &str = "team-plugins";

/// moto, with digit-mask at `s3://team-plugins/filters/digit-mask.wasm`.
async fn moto_with_digit_mask() -> Moto {
    let moto = Moto::start();
    aws::create_bucket(&moto.endpoint, BUCKET).await;
    aws::s3_client(&moto.endpoint)
        .put_object()
        .bucket(BUCKET)
        .key("filters/digit-mask.wasm")
        .body(
            std::fs::read(wasm_router_test_artifacts::DIGIT_MASK)
                .unwrap()
                .into(),
        )
        .send()
        .await
        .expect("PutObject");
    moto
}

/// A registry holding the component at `path` as `repository_tag`; the manifest's digest.
fn registry_with(repository_tag: &str, path: &str) -> (Registry, String) {
    let registry = Registry::start();
    let staging = tempfile::tempdir().unwrap();
    let file = staging.path().join(Path::new(path).file_name().unwrap());
    std::fs::copy(path, &file).unwrap();
    let manifest = registry.push(repository_tag, &file);
    (registry, manifest)
}

fn pin_of(path: &str) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// Send one event with `log` to the router and wait for its ack.
fn send(router: &RouterProcess, log: &str) {
    let mut conn = std::net::TcpStream::connect(router.tcp_addr()).unwrap();
    let frame = common::message_frame(
        b"app.web",
        1_000,
        &common::msgpack(&json!({ "log": log })),
        Some("c1"),
    );
    conn.write_all(&frame).unwrap();
    common::expect_ack(&mut conn, "c1");
}

/// `wasm-router validate -c config` with `env`: (success, stdout + stderr).
fn validate(config: &Path, env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = common::router_command();
    cmd.args(["validate", "-c"])
        .arg(config)
        .envs(aws::aws_env());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let out = common::run_to_end(&mut cmd, "wasm-router validate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_load_from_s3_and_an_oci_registry_by_digest_and_start_again_offline() {
    let moto = moto_with_digit_mask().await;
    let (registry, manifest) =
        registry_with("plugins/redact:1.0", wasm_router_test_artifacts::REDACT);
    assert!(manifest.starts_with("sha256:"), "{manifest}");

    // A FireLens-shaped classic config, its filters named by URL (Fluent Bit's `WASM_Path`).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        format!(
            "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n\
             [FILTER]\n    Name wasm\n    Match app.*\n    WASM_Path s3://{BUCKET}/filters/digit-mask.wasm\n    sha256 {digit_mask}\n\n\
             [FILTER]\n    Name wasm\n    Match app.*\n    WASM_Path oci://{registry}/plugins/redact@{manifest}\n\n\
             [OUTPUT]\n    Name stdout\n    Match *\n",
            digit_mask = pin_of(wasm_router_test_artifacts::DIGIT_MASK),
            registry = registry.address,
        ),
    )
    .unwrap();
    // The cache where the image keeps it: under $XDG_CACHE_HOME.
    let cache = dir.path().join("cache");
    let endpoint = moto.endpoint.clone();
    let start = || {
        let mut cmd = common::router_command();
        cmd.arg("-c")
            .arg(&config)
            .envs(aws::aws_env())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("XDG_CACHE_HOME", &cache);
        RouterProcess::spawn(&mut cmd, tempfile::tempdir().unwrap())
    };
    let expected = json!({"log": "mail [REDACTED:email] pin ****"});

    let router = start();
    send(&router, "mail bob@example.com pin 1234");
    router.wait_for_events(1);
    let log = router.log_text();
    let events = router.stop();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].record, expected);
    assert_eq!(log.matches("plugin fetched").count(), 2, "{log}");

    // S3 and the registry gone: both plugins come from the cache, by digest.
    drop(moto);
    drop(registry);
    assert!(std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).is_err());
    let router = start();
    send(&router, "mail eve@example.org pin 98");
    router.wait_for_events(1);
    let log = router.log_text();
    let events = router.stop();
    assert_eq!(
        events[0].record,
        json!({"log": "mail [REDACTED:email] pin **"})
    );
    assert_eq!(
        log.matches("found in the cache by digest").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("plugin fetched"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_pins_and_unreachable_sources_are_refused_naming_the_url_and_fix() {
    let moto = moto_with_digit_mask().await;
    let (registry, _) = registry_with(
        "plugins/keep-all:latest",
        wasm_router_test_artifacts::KEEP_ALL,
    );
    let dir = tempfile::tempdir().unwrap();
    let config_with = |filter: &str| {
        let path = dir.path().join("router.toml");
        std::fs::write(
            &path,
            format!(
                "[service]\nplugin_cache_dir = \"{}\"\n\n[[inputs]]\ntype = \"forward\"\nlisten = \"127.0.0.1:0\"\n\n[[filters]]\ntype = \"wasm\"\nmatch = \"*\"\n{filter}\n[[outputs]]\ntype = \"null\"\nmatch = \"*\"\n",
                dir.path().join("cache").display()
            ),
        )
        .unwrap();
        path
    };
    let env = [("AWS_ENDPOINT_URL", moto.endpoint.clone())];
    let digit_mask = pin_of(wasm_router_test_artifacts::DIGIT_MASK);
    let keep_all_pin = pin_of(wasm_router_test_artifacts::KEEP_ALL);

    // A pin of other bytes: refused, with both digests.
    let (ok, out) = validate(
        &config_with(&format!(
            "path = \"s3://{BUCKET}/filters/digit-mask.wasm\"\nsha256 = \"{keep_all_pin}\"\n"
        )),
        &env,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("s3://{BUCKET}/filters/digit-mask.wasm: the plugin's sha256 is {digit_mask}, but the config pins sha256 = \"{keep_all_pin}\"")),
        "{out}"
    );
    // A tag without a pin: refused before any fetch.
    let oci_tag = format!("oci://{}/plugins/keep-all:latest", registry.address);
    let (ok, out) = validate(&config_with(&format!("path = \"{oci_tag}\"\n")), &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("can change after you tested it") && out.contains("@sha256:"),
        "{out}"
    );
    // The tag with the right pin loads.
    let (ok, out) = validate(
        &config_with(&format!(
            "path = \"{oci_tag}\"\nsha256 = \"{keep_all_pin}\"\n"
        )),
        &env,
    );
    assert!(ok, "{out}");
    // A missing object and a missing repository name the URL and what to do.
    let (ok, out) = validate(
        &config_with(&format!(
            "path = \"s3://{BUCKET}/filters/nope.wasm\"\nsha256 = \"{digit_mask}\"\n"
        )),
        &env,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "s3://{BUCKET}/filters/nope.wasm does not exist (NoSuchKey); upload the plugin"
        )),
        "{out}"
    );
    let missing = format!("oci://{}/plugins/nope:1.0", registry.address);
    let (ok, out) = validate(
        &config_with(&format!(
            "path = \"{missing}\"\nsha256 = \"{digit_mask}\"\n"
        )),
        &env,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{missing}: cannot fetch the plugin: GET http://{}/v2/plugins/nope/manifests/1.0: 404 Not Found", registry.address)),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_variable_naming_a_wasm_puts_it_in_the_plugin_directory_of_a_classic_config() {
    let moto = moto_with_digit_mask().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fluent-bit.conf");
    std::fs::write(
        &config,
        "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 0\n\n[FILTER]\n    Name wasm\n    Match app.*\n    WASM_Path digit-mask.wasm\n\n[OUTPUT]\n    Name stdout\n    Match *\n",
    )
    .unwrap();
    let plugin_dir = dir.path().join("plugins");
    let mut cmd = common::router_command();
    cmd.arg("-c")
        .arg(&config)
        .envs(aws::aws_env())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("WASM_ROUTER_PLUGIN_DIR", &plugin_dir)
        .env("WASM_ROUTER_INIT_DIR", dir.path().join("init"))
        .env(
            "aws_fluent_bit_init_s3_1",
            format!("arn:aws:s3:::{BUCKET}/filters/digit-mask.wasm"),
        );
    let router = RouterProcess::spawn(&mut cmd, tempfile::tempdir().unwrap());
    router.tcp_addr();
    assert_eq!(
        std::fs::read(plugin_dir.join("digit-mask.wasm")).unwrap(),
        std::fs::read(wasm_router_test_artifacts::DIGIT_MASK).unwrap()
    );
    send(&router, "pin 1234");
    router.wait_for_events(1);
    let events = router.stop();
    assert_eq!(events[0].record, json!({"log": "pin ****"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecr_registry_is_logged_into_with_get_authorization_token() {
    let moto = Moto::start();
    let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let token = wasm_router::plugin::source::oci::ecr_basic_auth(
        registry,
        &moto.endpoint,
        wasm_router::net::aws_connection::AwsOverrides::static_credentials(
            aws::ACCESS_KEY,
            aws::SECRET_KEY,
        ),
    )
    .await
    .unwrap();
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    let (user, password) = std::str::from_utf8(&basic)
        .unwrap()
        .split_once(':')
        .unwrap();
    assert_eq!(user, "AWS");
    assert!(!password.is_empty());
}
