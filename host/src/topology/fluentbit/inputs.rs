//! `[INPUT]` sections of the `http` and `exec` inputs mapped onto their `[[inputs]]` tables
//! (see [`crate::input::http`] and [`crate::input::exec`]).

use super::{Mapper, PAUSE_ALWAYS, at, on_off, unknown};
use crate::config::classic::{Entry, Section};
use std::path::PathBuf;
use toml::{Table, Value};

const MEMORY_BOUNDED: &str =
    "is accepted; memory is bounded by [service] memory_budget and each output's buffer";

/// The keys every input has: placement, and the memory and storage keys that need no setting.
fn common(m: &mut Mapper, t: &mut Table, e: &Entry) -> bool {
    match e.key.as_str() {
        "name" => {}
        "alias" => {
            t.insert("name".into(), e.value.clone().into());
        }
        "mem_buf_limit" | "threaded" => m.warn(e, MEMORY_BOUNDED),
        "storage.type" => {
            m.filesystem_storage |= e.value.eq_ignore_ascii_case("filesystem");
        }
        "storage.pause_on_chunks_overlimit" => m.warn(e, PAUSE_ALWAYS),
        _ => return false,
    }
    true
}

/// A whole number, or the error naming the line.
fn number(e: &Entry) -> Result<i64, String> {
    e.value
        .trim()
        .parse()
        .map_err(|_| format!("{}: {} {:?}: use a whole number", at(e), e.key, e.value))
}

/// Fluent Bit's `in_http`: Listen (or its old name Host) 0.0.0.0 and Port 9880 by default.
pub(super) fn http(m: &mut Mapper, s: &Section) -> Result<(), String> {
    let (mut listen, mut port) = ("0.0.0.0".to_string(), "9880".to_string());
    let mut t = Table::new();
    t.insert("type".into(), "http".into());
    let mut tls = Table::new();
    let mut tls_on = false;
    for e in &s.entries {
        if common(m, &mut t, e) {
            continue;
        }
        match e.key.as_str() {
            "listen" | "host" => listen = e.value.clone(),
            "port" => port = e.value.clone(),
            "tag" | "tag_key" | "buffer_max_size" | "buffer_chunk_size" => {
                t.insert(e.key.clone(), e.value.clone().into());
            }
            "successful_response_code" => {
                t.insert(e.key.clone(), number(e)?.into());
            }
            "http2" => m.warn(e, "is accepted; this input serves HTTP/1.1"),
            "tls" => tls_on = on_off(e)?,
            "tls.crt_file" => {
                tls.insert("cert_file".into(), e.value.clone().into());
            }
            "tls.key_file" => {
                tls.insert("key_file".into(), e.value.clone().into());
            }
            "success_header" | "add_remote_addr" | "remote_addr_key" | "enable_health_endpoint" => {
                return Err(format!(
                    "{}: `{}` of [INPUT] http is not supported; remove it (add fields to the records with a record_modifier filter)",
                    at(e),
                    e.key
                ));
            }
            _ => {
                return Err(unknown(
                    e,
                    "[INPUT] http",
                    "Listen, Port, Tag, Tag_Key, Buffer_Max_Size, Buffer_Chunk_Size, Successful_Response_code, tls, tls.crt_file, tls.key_file, http2, Alias, Mem_Buf_Limit, storage.type",
                ));
            }
        }
    }
    if tls_on {
        if !(tls.contains_key("cert_file") && tls.contains_key("key_file")) {
            return Err(format!(
                "{}: [INPUT] http `tls on` needs tls.crt_file and tls.key_file (PEM)",
                s.origin
            ));
        }
        t.insert("tls".into(), Value::Table(tls));
    }
    let host = if listen.contains(':') {
        format!("[{listen}]")
    } else {
        listen
    };
    t.insert("listen".into(), format!("{host}:{port}").into());
    m.inputs.push(Value::Table(t));
    Ok(())
}

/// Fluent Bit's `in_exec`. `Interval_Sec` and `Interval_NSec` add up to `interval` (both 0 or
/// less: Fluent Bit's 1 s).
pub(super) fn exec(m: &mut Mapper, s: &Section) -> Result<(), String> {
    let mut t = Table::new();
    t.insert("type".into(), "exec".into());
    let (mut secs, mut nanos) = (0i64, 0i64);
    for e in &s.entries {
        if common(m, &mut t, e) {
            continue;
        }
        match e.key.as_str() {
            "command" | "tag" | "parser" | "buf_size" => {
                t.insert(e.key.clone(), e.value.clone().into());
            }
            "interval_sec" => secs = number(e)?,
            "interval_nsec" => nanos = number(e)?,
            "oneshot" | "exit_after_oneshot" | "propagate_exit_code" => {
                t.insert(e.key.clone(), on_off(e)?.into());
            }
            _ => {
                return Err(unknown(
                    e,
                    "[INPUT] exec",
                    "Command, Tag, Parser, Interval_Sec, Interval_NSec, Buf_Size, Oneshot, Exit_After_Oneshot, Propagate_Exit_Code, Alias, Mem_Buf_Limit, storage.type",
                ));
            }
        }
    }
    if !t.contains_key("command") {
        return Err(format!(
            "{}: [INPUT] exec needs `Command`, e.g. `Command df -k /`",
            s.origin
        ));
    }
    let total = secs.max(0) as i128 * 1_000_000_000 + nanos.max(0) as i128;
    if total > 0 {
        t.insert(
            "interval".into(),
            format!("{}.{:09}s", total / 1_000_000_000, total % 1_000_000_000).into(),
        );
    }
    m.inputs.push(Value::Table(t));
    Ok(())
}

/// Give each exec input with a `parser` the config's `Parsers_File`s.
pub(super) fn finish(inputs: &mut [Value], parsers_files: &[PathBuf]) {
    let files: Vec<Value> = parsers_files
        .iter()
        .map(|p| Value::String(p.display().to_string()))
        .collect();
    for input in inputs {
        if let Value::Table(t) = input
            && t.get("type").and_then(Value::as_str) == Some("exec")
            && t.contains_key("parser")
        {
            t.insert("parsers_files".into(), Value::Array(files.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::input::exec::ExecInputConfig;
    use crate::input::http::HttpInputConfig;
    use crate::topology::InputConfig;

    fn map(text: &str) -> Result<super::super::Mapped, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fluent-bit.conf");
        std::fs::write(&path, text).unwrap();
        super::super::load(&path).map_err(|e| e.to_string())
    }

    fn http(mapped: &super::super::Mapped) -> &HttpInputConfig {
        match &mapped.config.inputs[0] {
            InputConfig::Http(c) => &c.options,
            other => panic!("not http: {other:?}"),
        }
    }

    fn exec(mapped: &super::super::Mapped) -> &ExecInputConfig {
        match &mapped.config.inputs[0] {
            InputConfig::Exec(c) => &c.options,
            other => panic!("not exec: {other:?}"),
        }
    }

    const OUT: &str = "[OUTPUT]\n    Name stdout\n    Match *\n";

    #[test]
    fn http_maps_host_port_and_its_keys() {
        let m = map(&format!(
            "[INPUT]\n    Name http\n    host 127.0.0.1\n    port 8888\n    Tag_Key tag\n    Buffer_Max_Size 1M\n    Successful_Response_Code 200\n    Mem_Buf_Limit 5MB\n{OUT}"
        ))
        .unwrap();
        let c = http(&m);
        assert_eq!(c.addr(), "127.0.0.1:8888");
        assert_eq!(c.tag_key.as_deref(), Some("tag"));
        assert_eq!(c.sizes().1, 1 << 20);
        assert_eq!(c.successful_response_code, Some(200));
        let m = map(&format!("[INPUT]\n    Name http\n{OUT}")).unwrap();
        assert_eq!(http(&m).addr(), "0.0.0.0:9880");
    }

    #[test]
    fn http_mistakes_name_the_line() {
        let err = map(&format!(
            "[INPUT]\n    Name http\n    Successful_Response_Code 202\n{OUT}"
        ))
        .unwrap_err();
        assert!(err.contains("fluent-bit.conf:3"), "{err}");
        assert!(err.contains("use 200, 201 or 204"), "{err}");
        let err = map(&format!(
            "[INPUT]\n    Name http\n    add_remote_addr true\n{OUT}"
        ))
        .unwrap_err();
        assert!(
            err.contains("fluent-bit.conf:3: `add_remote_addr` of [INPUT] http is not supported"),
            "{err}"
        );
        let err = map(&format!("[INPUT]\n    Name http\n    Bogus 1\n{OUT}")).unwrap_err();
        assert!(err.contains("unknown key `bogus` in [INPUT] http"), "{err}");
    }

    #[test]
    fn exec_maps_its_interval_and_switches() {
        let m = map(&format!(
            "[INPUT]\n    Name exec\n    Tag delete-old-files\n    Command find /tmp -mmin +10 ';'\n    Interval_Sec 600\n    Interval_NSec 500\n    Buf_Size 8mb\n    Oneshot false\n{OUT}"
        ))
        .unwrap();
        let c = exec(&m);
        assert_eq!(c.command, "find /tmp -mmin +10 ';'");
        assert_eq!(c.interval.unwrap().0, std::time::Duration::new(600, 500));
        assert_eq!(c.buf_size.unwrap().0, 8 << 20);
        assert!(!c.oneshot);
        let m = map(&format!(
            "[INPUT]\n    Name exec\n    Command date\n    Interval_Sec 0\n    Exit_After_Oneshot On\n    Propagate_Exit_Code On\n{OUT}"
        ))
        .unwrap();
        let c = exec(&m);
        assert!(c.interval.is_none() && c.exit_after_oneshot && c.propagate_exit_code);
    }

    #[test]
    fn exec_mistakes_name_the_line() {
        let err = map(&format!("[INPUT]\n    Name exec\n    Tag x\n{OUT}")).unwrap_err();
        assert!(
            err.contains("fluent-bit.conf:1: [INPUT] exec needs `Command`"),
            "{err}"
        );
        let err = map(&format!(
            "[INPUT]\n    Name exec\n    Command date\n    Propagate_Exit_Code On\n{OUT}"
        ))
        .unwrap_err();
        assert!(err.contains("fluent-bit.conf:"), "{err}");
        assert!(err.contains("propagate_exit_code needs"), "{err}");
        let err = map(&format!(
            "[INPUT]\n    Name exec\n    Command date\n    Parser missing\n{OUT}"
        ))
        .unwrap_err();
        assert!(err.contains("parser `missing` is not defined"), "{err}");
    }
}
