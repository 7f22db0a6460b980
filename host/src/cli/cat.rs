//! `wasm-router cat`: a forward-protocol client like fluent-cat. Each JSON object (from the
//! arguments, or one per line on stdin) is sent as a Message-mode request under `--tag`, with
//! the current time as an EventTime; with `--ack` each request asks for an ack and waits for it.

use anyhow::{Context, bail};
use clap::Args;
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Arguments of `wasm-router cat`.
#[derive(Args)]
pub struct CatArgs {
    /// The tag of the events.
    #[arg(short, long, default_value = "debug.cat")]
    tag: String,
    /// Receiver address: `host:port` or `unix:///path/to/socket`.
    #[arg(short, long, default_value = "127.0.0.1:24224")]
    address: String,
    /// Ask for an ack for each event and wait for it (fails after 10 s without one).
    #[arg(long)]
    ack: bool,
    /// JSON objects to send; without any, read one per line from stdin.
    records: Vec<String>,
}

/// Send the records; exits non-zero on the first failure.
pub async fn run(args: CatArgs) -> anyhow::Result<std::process::ExitCode> {
    let records: Vec<String> = if args.records.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .context("reading stdin")?
    } else {
        args.records.clone()
    };
    if let Some(path) = args.address.strip_prefix("unix://") {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("connecting to {}", args.address))?;
        send_all(stream, &args, &records).await?;
    } else {
        let stream = tokio::net::TcpStream::connect(&args.address)
            .await
            .with_context(|| format!("connecting to {}", args.address))?;
        send_all(stream, &args, &records).await?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn send_all<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    args: &CatArgs,
    records: &[String],
) -> anyhow::Result<()> {
    let mut sent = 0;
    for (n, line) in records.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("record {}: not JSON", n + 1))?;
        if !value.is_object() {
            bail!(
                "record {}: a record must be a JSON object, got {line}",
                n + 1
            );
        }
        let chunk = args.ack.then(|| format!("cat-{}-{n}", std::process::id()));
        let frame = message_frame(&args.tag, &value, chunk.as_deref())?;
        stream.write_all(&frame).await?;
        if let Some(chunk) = chunk {
            let expected = wasm_router::input::forward::ack_response(&msgpack_str(&chunk));
            let mut got = vec![0u8; expected.len()];
            tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut got))
                .await
                .context("no ack within 10 s")?
                .context("connection closed before the ack")?;
            if got != expected {
                bail!("unexpected ack for record {}: {got:02x?}", n + 1);
            }
        }
        sent += 1;
    }
    stream.flush().await?;
    eprintln!(
        "sent {sent} event(s) to {}{}",
        args.address,
        if args.ack { ", all acked" } else { "" }
    );
    Ok(())
}

fn msgpack_str(s: &str) -> Vec<u8> {
    let mut b = Vec::new();
    rmp::encode::write_str(&mut b, s).unwrap();
    b
}

/// `[tag, EventTime(now), record, {"chunk": id}?]`.
fn message_frame(
    tag: &str,
    record: &serde_json::Value,
    chunk: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let mut b = Vec::with_capacity(256);
    rmp::encode::write_array_len(&mut b, if chunk.is_some() { 4 } else { 3 })?;
    rmp::encode::write_str(&mut b, tag)?;
    rmp::encode::write_ext_meta(&mut b, 8, 0)?;
    b.extend_from_slice(&(now.as_secs() as u32).to_be_bytes());
    b.extend_from_slice(&now.subsec_nanos().to_be_bytes());
    b.extend_from_slice(&rmp_serde::to_vec_named(record)?);
    if let Some(chunk) = chunk {
        rmp::encode::write_map_len(&mut b, 1)?;
        rmp::encode::write_str(&mut b, "chunk")?;
        rmp::encode::write_str(&mut b, chunk)?;
    }
    Ok(b)
}
