//! The forward output against a real TCP receiver built on the router's own decoder.

use super::*;
use crate::event::Event;
use crate::input::forward::{Decoder, Frame, ack_response};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the receiver does with request number `n` (0-based, over all connections).
#[derive(Clone, Copy, PartialEq)]
enum Reply {
    Ack,
    /// Read it, then close the connection without acking.
    Close,
    /// Read it and never answer.
    Silent,
}

/// A receiver on 127.0.0.1: records every request's events (their bodies) in arrival order.
async fn receiver(
    script: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Vec<Bytes>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Arc<Mutex<Vec<Vec<Bytes>>>> = Arc::default();
    let (seen2, script) = (seen.clone(), Arc::new(script));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (seen, script) = (seen2.clone(), script.clone());
            tokio::spawn(async move {
                let mut decoder = Decoder::default();
                let mut buf = BytesMut::new();
                loop {
                    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                        let Frame::Request(req) = frame else { continue };
                        let n = {
                            let mut s = seen.lock().unwrap();
                            s.push(req.batch.events.iter().map(|e| e.body.clone()).collect());
                            s.len() - 1
                        };
                        match script(n) {
                            Reply::Ack => {
                                let chunk = req.chunk.expect("acks requested");
                                sock.write_all(&ack_response(&chunk)).await.unwrap();
                            }
                            Reply::Close => return,
                            Reply::Silent => {}
                        }
                    }
                    if sock.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn settings(addr: &str) -> ForwardSettings {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let cfg = ForwardOutputConfig {
        host: Some(host.into()),
        port: Some(port.parse().unwrap()),
        unix_path: None,
        tag: None,
        time_as_integer: false,
        require_ack_response: None,
        compress: None,
        ack_response_timeout: Some(crate::config::DurationStr(Duration::from_millis(300))),
        connect_timeout: None,
        max_request_bytes: Some(crate::config::ByteSize(1000)),
        shared_key: None,
        self_hostname: None,
        username: None,
        password: None,
        tls: false,
        tls_verify: None,
        tls_ca_file: None,
        tls_server_name: None,
    };
    cfg.settings().unwrap()
}

/// 10 events of ~300 bytes: 4 requests of at most 1000 bytes of records.
fn batch() -> Batch {
    let events = (0..10u8)
        .map(|i| {
            let mut body = vec![0x81, 0xa1, b'i'];
            rmp::encode::write_str(&mut body, &format!("{i}{}", "x".repeat(280))).unwrap();
            Event {
                time_ns: 1_700_000_000_000_000_000 + u64::from(i),
                body: Bytes::from(body),
            }
        })
        .collect();
    Batch::new(Bytes::from_static(b"app"), events)
}

fn flat(seen: &Mutex<Vec<Vec<Bytes>>>) -> Vec<Bytes> {
    seen.lock().unwrap().iter().flatten().cloned().collect()
}

#[tokio::test]
async fn a_batch_goes_out_as_several_acked_requests_in_order() {
    let (addr, seen) = receiver(|_| Reply::Ack).await;
    let mut out = ForwardOutput::new(settings(&addr));
    let b = batch();
    out.deliver(&b, &mut DeliveryProgress::new(b.len()))
        .await
        .unwrap();
    out.deliver(&b, &mut DeliveryProgress::new(b.len()))
        .await
        .unwrap();
    let requests = seen.lock().unwrap().len();
    assert_eq!(requests, 8, "two batches of four requests");
    let bodies = flat(&seen);
    let want: Vec<Bytes> = b
        .events
        .iter()
        .chain(&b.events)
        .map(|e| e.body.clone())
        .collect();
    assert_eq!(bodies, want);
}

#[tokio::test]
async fn a_retry_resends_only_the_requests_that_were_not_acked() {
    // Request #2 (the third) is read and the connection closed before its ack.
    let (addr, seen) = receiver(|n| if n == 2 { Reply::Close } else { Reply::Ack }).await;
    let mut out = ForwardOutput::new(settings(&addr));
    let b = batch();
    let mut progress = DeliveryProgress::new(b.len());
    let err = out.deliver(&b, &mut progress).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Retryable { .. }), "{err:?}");
    assert_eq!(progress.delivered_count(), 10 - progress.pending_count());
    assert!(
        progress.delivered_count() > 0,
        "the acked requests are kept"
    );
    out.deliver(&b, &mut progress).await.unwrap();
    let requests: Vec<usize> = seen.lock().unwrap().iter().map(|r| r.len()).collect();
    assert_eq!(
        requests.len(),
        5,
        "4 requests + the one whose ack was lost: {requests:?}"
    );
    // Every event arrived; only the unacked request's events twice.
    let bodies = flat(&seen);
    assert_eq!(bodies.len(), 10 + requests[2]);
    for e in &b.events {
        assert!(bodies.contains(&e.body));
    }
}

#[tokio::test]
async fn a_missing_ack_and_a_missing_receiver_are_retryable() {
    let (addr, _seen) = receiver(|_| Reply::Silent).await;
    let mut out = ForwardOutput::new(settings(&addr));
    match out.deliver(&batch(), &mut DeliveryProgress::new(10)).await {
        Err(DeliveryError::Retryable { reason, .. }) => {
            assert!(reason.contains("did not ack"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut out = ForwardOutput::new(settings(&addr));
    match out.deliver(&batch(), &mut DeliveryProgress::new(10)).await {
        Err(DeliveryError::Retryable { reason, .. }) => {
            assert!(reason.contains("cannot connect"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_unix_socket_endpoint_and_gzip_work_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agg.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let received = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        while events.len() < 10 {
            while let Some(Frame::Request(req)) = decoder.decode(&mut buf).unwrap() {
                sock.write_all(&ack_response(&req.chunk.unwrap()))
                    .await
                    .unwrap();
                events.extend(req.batch.events);
            }
            if events.len() < 10 {
                assert!(sock.read_buf(&mut buf).await.unwrap() > 0);
            }
        }
        events
    });
    let cfg: ForwardOutputConfig = toml::from_str(&format!(
        "unix_path = {:?}\ncompress = \"gzip\"",
        path.to_str().unwrap()
    ))
    .unwrap();
    let mut out = ForwardOutput::new(cfg.settings().unwrap());
    let b = batch();
    out.deliver(&b, &mut DeliveryProgress::new(b.len()))
        .await
        .unwrap();
    assert_eq!(received.await.unwrap(), b.events);
}

#[test]
fn settings_are_validated_with_the_key_and_the_fix() {
    let parse = |extra: &str| -> Result<ForwardSettings, String> {
        let cfg: ForwardOutputConfig = toml::from_str(extra).unwrap();
        cfg.settings()
    };
    let s = parse("").unwrap();
    assert_eq!(s.endpoint, Endpoint::Tcp("127.0.0.1:24224".into()));
    assert!(s.require_ack);
    assert_eq!(s.mode, request::Mode::Forward);
    assert!(s.security.is_none() && s.tls.is_none());
    assert_eq!(
        parse("host = \"::1\"\nport = 5").unwrap().endpoint,
        Endpoint::Tcp("[::1]:5".into())
    );
    assert_eq!(
        parse("compress = \"gzip\"").unwrap().mode,
        request::Mode::CompressedPackedForward
    );
    assert_eq!(
        parse("compress = \"text\"").unwrap().mode,
        request::Mode::PackedForward
    );
    let s = parse("shared_key = \"k3y\"\nself_hostname = \"app-1\"").unwrap();
    assert_eq!(s.security.unwrap().self_hostname, "app-1");
    assert!(
        parse("username = \"u\"")
            .unwrap_err()
            .contains("shared_key")
    );
    assert!(
        parse("shared_key = \"\"")
            .unwrap_err()
            .contains("shared_key is empty")
    );
    assert!(
        parse("tls_verify = false")
            .unwrap_err()
            .contains("tls = true")
    );
    assert!(
        parse("tls = true\ntls_ca_file = \"/nonexistent/ca.pem\"")
            .unwrap_err()
            .contains("tls_ca_file /nonexistent/ca.pem")
    );
    let s = parse("tls = true\ntls_verify = false\nhost = \"agg.internal\"").unwrap();
    assert_eq!(
        s.tls.unwrap().server_name,
        rustls::pki_types::ServerName::try_from("agg.internal").unwrap()
    );
    assert!(parse("compress = \"lz4\"").unwrap_err().contains("gzip"));
    assert!(
        parse("unix_path = \"/x\"\nport = 1")
            .unwrap_err()
            .contains("unix_path")
    );
    assert!(parse("port = 0").unwrap_err().contains("port"));
}

/// A receiver that requires the handshake, and an output without `shared_key`: the error says
/// what to set.
#[tokio::test]
async fn a_receiver_that_sends_helo_asks_for_the_shared_key() {
    use crate::input::forward::handshake::{Helo, encode_helo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let helo = Helo {
            nonce: vec![9; 16],
            auth: Vec::new(),
            keepalive: true,
        };
        sock.write_all(&encode_helo(&helo)).await.unwrap();
        let mut sink = BytesMut::new();
        while sock.read_buf(&mut sink).await.unwrap_or(0) > 0 {}
    });
    let mut out = ForwardOutput::new(settings(&addr));
    match out.deliver(&batch(), &mut DeliveryProgress::new(10)).await {
        Err(DeliveryError::Retryable { reason, .. }) => {
            assert!(reason.contains("set `shared_key`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Fluent Bit's names for the handshake and TLS, on `[INPUT] forward` and `[OUTPUT] forward`.
#[test]
fn classic_configs_map_shared_key_self_hostname_and_tls() {
    use crate::config::classic::Parser;
    use crate::topology::fluentbit::map;
    let env = |name: &str| (name == "FORWARD_KEY").then(|| "classic-key-77".to_string());
    let text = "[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 24224\n    Shared_Key ${FORWARD_KEY}\n    Self_Hostname agg-1\n    tls on\n    tls.crt_file /certs/server.pem\n    tls.key_file /certs/server.key\n\
[OUTPUT]\n    Name forward\n    Match *\n    Host aggregator.internal\n    Port 24224\n    Shared_Key ${FORWARD_KEY}\n    Self_Hostname app-1\n    Compress gzip\n    tls On\n    tls.verify Off\n    tls.vhost agg.example\n";
    let sections = Parser::new(&env)
        .parse_text(text, std::path::Path::new("fluent-bit.conf"))
        .unwrap();
    let mapped = map(&sections).unwrap();
    let crate::topology::InputConfig::Forward(input) = &mapped.config.inputs[0] else {
        panic!("a forward input")
    };
    let security = input.security.as_ref().unwrap();
    assert_eq!(security.shared_key, "classic-key-77");
    assert_eq!(security.self_hostname.as_deref(), Some("agg-1"));
    let tls = input.tls.as_ref().unwrap();
    assert_eq!(tls.cert_file, std::path::PathBuf::from("/certs/server.pem"));
    let crate::topology::OutputConfig::Forward(output) = &mapped.config.outputs[0] else {
        panic!("{:?}", mapped.config.outputs[0])
    };
    let s = output.settings().unwrap();
    let security = s.security.unwrap();
    assert_eq!(
        (
            security.shared_key.as_str(),
            security.self_hostname.as_str()
        ),
        ("classic-key-77", "app-1")
    );
    assert_eq!(s.mode, request::Mode::CompressedPackedForward);
    assert_eq!(
        s.tls.unwrap().server_name,
        rustls::pki_types::ServerName::try_from("agg.example").unwrap()
    );

    let refused = |text: &str| {
        let sections = Parser::new(&env)
            .parse_text(text, std::path::Path::new("fluent-bit.conf"))
            .unwrap();
        map(&sections).unwrap_err()
    };
    let e = refused(
        "[INPUT]\n    Name forward\n    Listen 0.0.0.0\n    tls on\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(
        e.contains("fluent-bit.conf:1") && e.contains("tls.crt_file"),
        "{e}"
    );
    let e = refused(
        "[INPUT]\n    Name forward\n    Listen 0.0.0.0\n    Self_Hostname x\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(e.contains("needs Shared_Key"), "{e}");
}
