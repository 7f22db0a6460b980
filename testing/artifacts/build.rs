//! Builds every guest component for `wasm32-wasip2` with a nested `cargo build` and writes
//! `$OUT_DIR/guests.rs`: one `pub const NAME: &str` per component, holding its absolute path.
//!
//! The nested build uses its own target directory (`<target>/wasm-guests`), so it never waits
//! for the lock the outer build holds on the shared target directory. Modelled on wasmtime's
//! `crates/test-programs/artifacts/build.rs`.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// One guest: the constant naming it, its package, its library (file) name, and what it does.
struct Guest {
    constant: &'static str,
    package: &'static str,
    library: &'static str,
    doc: &'static str,
}

const GUESTS: &[Guest] = &[
    Guest {
        constant: "KEEP_ALL",
        package: "guest-keep-all",
        library: "guest_keep_all",
        doc: "Filter: keeps every event; logs once in `init`, adds each batch's size to the `events` counter.",
    },
    Guest {
        constant: "INFINITE_LOOP",
        package: "guest-infinite-loop",
        library: "guest_infinite_loop",
        doc: "Filter: `process` never returns (only an epoch deadline stops it).",
    },
    Guest {
        constant: "MEMORY_BOMB",
        package: "guest-memory-bomb",
        library: "guest_memory_bomb",
        doc: "Filter: `process` allocates 1 MiB blocks until allocation fails (then aborts).",
    },
    Guest {
        constant: "TRAP",
        package: "guest-trap",
        library: "guest_trap",
        doc: "Filter: `process` panics (a trap).",
    },
    Guest {
        constant: "POISON",
        package: "guest-poison",
        library: "guest_poison",
        doc: "Filter (per batch): keeps every event; panics on an event with `\"poison\": \"panic\"`, refuses the whole batch (the same error for every event) for `\"poison\": \"refuse\"`.",
    },
    Guest {
        constant: "WRONG_LENGTH",
        package: "guest-wrong-length",
        library: "guest_wrong_length",
        doc: "Filter: returns one outcome too few (one outcome for an empty batch).",
    },
    Guest {
        constant: "BAD_MSGPACK",
        package: "guest-bad-msgpack",
        library: "guest_bad_msgpack",
        doc: "Filter: replaces body `i` by, for `i % 4`: 0 `c1`, 1 an array, 2 a truncated map, 3 a map plus a trailing byte.",
    },
    Guest {
        constant: "EXPAND_BOMB",
        package: "guest-expand-bomb",
        library: "guest_expand_bomb",
        doc: "Filter: expands each event into 100,000 unchanged copies.",
    },
    Guest {
        constant: "INIT_FAILS",
        package: "guest-init-fails",
        library: "guest_init_fails",
        doc: "Filter: `init` returns two config errors (`/fields/0` and the whole config) after logging an error.",
    },
    Guest {
        constant: "NETWORK",
        package: "guest-network",
        library: "guest_network",
        doc: "Filter: tries a TCP connection, a UDP socket and a DNS lookup per event; returns `error` with what each got.",
    },
    Guest {
        constant: "SDK_KEEP_ALL",
        package: "guest-sdk-keep-all",
        library: "guest_sdk_keep_all",
        doc: "Filter: keeps every event through the SDK's per-event loop (baseline for SDK overhead).",
    },
    Guest {
        constant: "DIGIT_MASK",
        package: "wasm-router-plugin-digit-mask",
        library: "digit_mask",
        doc: "Filter (plugins/digit-mask): replaces every ASCII digit of `log` with `*`; other events kept.",
    },
    Guest {
        constant: "REDACT",
        package: "wasm-router-plugin-redact",
        library: "redact",
        doc: "Filter (plugins/redact): masks emails, cards, SSNs, IPs, AWS keys, tokens, custom patterns; asks to fail closed.",
    },
    Guest {
        constant: "PARSE_JSON",
        package: "wasm-router-plugin-parse-json",
        library: "parse_json",
        doc: "Filter (plugins/parse-json): parses JSON in `log` (config `field`) and merges it into the record.",
    },
    Guest {
        constant: "JSON_OUTPUT",
        package: "guest-json-output",
        library: "guest_json_output",
        doc: "Output: one JSON-array POST per batch to config `url` (`gzip`, `api_key_header` optional); 2xx ok, 429/5xx retry (Retry-After), 413 split, other 4xx permanent, transport error retry.",
    },
    Guest {
        constant: "SDK_JSON_OUTPUT",
        package: "guest-sdk-json-output",
        library: "guest_sdk_json_output",
        doc: "Output: `JSON_OUTPUT` written with the SDK (`max_body_bytes` splits bodies); default SDK response classification (408 also retries).",
    },
    Guest {
        constant: "DATADOG",
        package: "wasm-router-plugin-datadog",
        library: "datadog",
        doc: "Output (plugins/datadog): Datadog Logs intake v2, `DD-API-KEY` from the secret `api_key`, gzip; 400/401/403 permanent, 408/429/5xx retry, 413 split.",
    },
    Guest {
        constant: "NEWRELIC",
        package: "wasm-router-plugin-newrelic",
        library: "newrelic",
        doc: "Output (plugins/newrelic): New Relic Log API detailed payload, `Api-Key` / `X-License-Key` from the secret `api_key` / `license_key`, gzip; 400/401/403 permanent, 408/429/5xx retry, 413 split.",
    },
    Guest {
        constant: "HTTP",
        package: "wasm-router-plugin-http",
        library: "http",
        doc: "Output (plugins/http): Fluent Bit's http output (json, json_lines, json_stream, msgpack; headers; basic auth from the secret `basic_auth`; gzip); 2xx ok, 408/429/5xx retry, other 4xx permanent, 413 split.",
    },
    Guest {
        constant: "LOKI",
        package: "wasm-router-plugin-loki",
        library: "loki",
        doc: "Output (plugins/loki): Loki push API JSON (labels, label_keys, remove_keys, line_format, drop_single_key, `X-Scope-OrgID`, basic auth from the secret `basic_auth`); 2xx ok, 408/429/5xx retry, 413 split, other statuses permanent.",
    },
    Guest {
        constant: "OPENSEARCH",
        package: "wasm-router-plugin-opensearch",
        library: "opensearch",
        doc: "Output (plugins/opensearch): Fluent Bit's es/opensearch outputs (Bulk API NDJSON; index/logstash; time and tag keys; generate_id/id_key; create/index/update/upsert); per-item results through delivery-items: 429/5xx items retried, others failed under their error type, 409 under create delivered.",
    },
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    for watched in [
        "wit",
        "sdk",
        "plugins",
        "testing/guests",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    for variable in ["CARGO_TARGET_DIR", "WASM_ROUTER_GUEST_PROFILE"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }

    require_wasm_target();

    let guest_target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-guests");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &guest_target_dir)
        // Guests ship without DWARF (the name section stays, so traps are still symbolized),
        // with full LTO as plugin authors are told to build (smaller, and unused imports go).
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        // Flags meant for the host build (e.g. `-C target-cpu=native`) do not apply to wasm.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for guest in GUESTS {
        command.args(["-p", guest.package]);
    }
    eprintln!("building the wasm guests: {command:?}");
    let status = command
        .status()
        .unwrap_or_else(|error| panic!("could not run cargo ({command:?}): {error}"));
    if !status.success() {
        panic!(
            "building the wasm guests failed ({status}); the cargo output above says why. Command: {command:?}"
        );
    }

    let artifact_dir = guest_target_dir.join(TARGET).join("release");
    let mut generated = String::new();
    let mut dependencies = BTreeSet::new();
    for guest in GUESTS {
        let wasm = artifact_dir.join(format!("{}.wasm", guest.library));
        assert!(
            wasm.is_file(),
            "cargo built `{}` but {} is missing",
            guest.package,
            wasm.display()
        );
        collect_dependencies(&wasm.with_extension("d"), &mut dependencies);
        writeln!(generated, "/// {} (package `{}`)", guest.doc, guest.package).unwrap();
        writeln!(
            generated,
            "pub const {}: &str = {:?};",
            guest.constant,
            wasm.display().to_string()
        )
        .unwrap();
    }
    for dependency in dependencies {
        println!("cargo:rerun-if-changed={dependency}");
    }
    fs::write(out_dir.join("guests.rs"), generated).unwrap();
}

/// Stops the build with the fix when the `wasm32-wasip2` standard library is not installed.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output();
    let installed = match output {
        Ok(output) if output.status.success() => {
            let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            Path::new(&libdir).is_dir()
        }
        _ => false,
    };
    if !installed {
        panic!(
            "the Rust target `{TARGET}` is not installed, so the wasm test guests cannot be built. \
             Run `rustup target add {TARGET}` and build again."
        );
    }
}

/// Reads a cargo dep-info (`.d`) file and collects every source file it lists.
fn collect_dependencies(dep_info: &Path, into: &mut BTreeSet<String>) {
    let Ok(contents) = fs::read_to_string(dep_info) else {
        return;
    };
    for line in contents.lines() {
        let Some(position) = line.find(": ") else {
            continue;
        };
        let mut parts = line[position + 2..].split_whitespace();
        while let Some(part) = parts.next() {
            let mut file = part.to_string();
            while file.ends_with('\\') {
                file.pop();
                file.push(' ');
                match parts.next() {
                    Some(next) => file.push_str(next),
                    None => break,
                }
            }
            into.insert(file);
        }
    }
}
