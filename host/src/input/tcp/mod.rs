//! `type = "tcp"`: Fluent Bit's `in_tcp`. Applications (an EMF library, log4j's socket
//! appender, `nc`) connect and send records: JSON objects (`format = "json"`), or text cut at a
//! separator (`format = "none"`, each piece `{"log": "…"}`). Each record becomes an event at the
//! time it arrives, tagged `tag`.
//!
//! There is no acknowledgement in this protocol, so nothing a sender wrote is ever dropped
//! silently: a record the pipeline refused, one too large (`record_too_large`), text that is not
//! a JSON object (`invalid_json`) and a record cut off when the router closes a connection
//! (`connection_closed_mid_record`) are each counted. Bounded like the forward input: at most
//! `max_connections` at once (at the cap the longest-idle one is closed for a newcomer), a
//! connection's buffer beyond a small free allowance is charged to the inputs' memory budget and
//! never exceeds the largest record, and a connection waits (TCP backpressure) while the
//! pipeline's buffers are full. A health probe (`nc -z`) connects and closes: no record, no
//! error.

pub mod config;
mod records;

pub use config::TcpInputConfig;

use super::connections::{ConnState, Connections, FREE_PER_CONNECTION, Kind, accept_tcp};
use super::{BindError, ListenAddr};
use crate::buffer::budget::{InputBudget, InputCharge};
use crate::event::{Batch, Event, now_ns};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use crate::pipeline::Pipeline;
use bytes::{Bytes, BytesMut};
use records::{Splitter, Taken};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A bound tcp input.
pub struct TcpServer {
    listener: TcpListener,
    ctx: Arc<ConnContext>,
    slots: Arc<Semaphore>,
}

/// What every connection of the input shares.
struct ConnContext {
    component: Component,
    metrics: Arc<Metrics>,
    tag: Bytes,
    format: config::TcpFormat,
    /// What ends a text record (`format = "none"`).
    separator: Vec<u8>,
    /// Bytes read at a time.
    chunk: usize,
    /// The largest record.
    max_record: usize,
    /// The key of the sender's address in each record, if any.
    source_address_key: Option<String>,
    connections: Arc<Connections>,
    memory: InputBudget,
    close_now: CancellationToken,
}

impl TcpServer {
    /// Bind the listener of `config` (validated before); connections hold memory from `memory`.
    pub async fn bind(
        config: &TcpInputConfig,
        metrics: Arc<Metrics>,
        memory: &InputBudget,
    ) -> Result<Self, BindError> {
        let name = config.name.clone().unwrap_or_else(|| "tcp".to_string());
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|source| BindError {
                input: name.clone(),
                addr: config.listen.clone(),
                source,
            })?;
        let max = config
            .max_connections
            .unwrap_or(config::DEFAULT_MAX_CONNECTIONS);
        let tag = config.tag.clone().unwrap_or_else(|| "tcp".to_string());
        let (chunk, max_record) = config.sizes();
        Ok(TcpServer {
            listener,
            slots: Arc::new(Semaphore::new(max)),
            ctx: Arc::new(ConnContext {
                component: Component::input(name),
                metrics,
                tag: Bytes::from(tag),
                format: config.format,
                separator: config.separator_bytes(),
                chunk,
                max_record,
                source_address_key: config.source_address_key.clone(),
                connections: Arc::default(),
                memory: memory.clone(),
                close_now: CancellationToken::new(),
            }),
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.listener
            .local_addr()
            .map(|a| vec![ListenAddr::Tcp(a)])
            .unwrap_or_default()
    }

    /// Accept and serve connections until `shutdown`; then let open connections finish what
    /// they send until they close or `drain` has passed.
    pub async fn run(self, pipeline: Arc<Pipeline>, mut shutdown: Shutdown, drain: Duration) {
        let ctx = self.ctx;
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(input = %ctx.component.id, addr = %ListenAddr::Tcp(addr), "listening");
        }
        let tracker = TaskTracker::new();
        loop {
            let Some((stream, peer)) =
                accept_tcp(&self.listener, &ctx.component, &mut shutdown).await
            else {
                break;
            };
            let admitted = ctx.connections.admit(
                Kind::Tcp,
                &self.slots,
                &ctx.metrics,
                &ctx.component,
                &mut shutdown,
            );
            let Some((permit, registration)) = admitted.await else {
                break;
            };
            let (ctx, pipeline) = (ctx.clone(), pipeline.clone());
            tracker.spawn(async move {
                ctx.serve(stream, peer, &registration.state, &pipeline)
                    .await;
                drop(registration);
                drop(permit);
            });
        }
        tracker.close();
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(input = %ctx.component.id, open = tracker.len(), "closing connections still open after the drain time");
            ctx.close_now.cancel();
            tracker.wait().await;
        }
    }
}

impl ConnContext {
    /// Read records from one connection until it closes, is closed, or breaks.
    async fn serve(
        &self,
        mut stream: TcpStream,
        peer: std::net::SocketAddr,
        conn: &ConnState,
        pipeline: &Pipeline,
    ) {
        let chunk = self.chunk;
        let source = self
            .source_address_key
            .clone()
            .map(|key| (key, format!("tcp://{peer}")));
        let mut splitter =
            Splitter::new(self.format, self.separator.clone(), self.max_record, source);
        let mut memory = self.memory.charge();
        let mut buf = BytesMut::new();
        let mut taken = Vec::new();
        let closed_by_sender = loop {
            // Room for one more read on top of what waits for the end of its record.
            let need = (buf.len() + chunk).saturating_sub(FREE_PER_CONNECTION);
            if !self.hold(&mut memory, need, conn).await {
                break false;
            }
            buf.reserve(chunk);
            let read = tokio::select! {
                read = stream.read_buf(&mut buf) => read,
                _ = conn.close.cancelled() => break false,
                _ = self.close_now.cancelled() => break false,
            };
            match read {
                Ok(0) => {
                    splitter.finish(&mut buf, &mut taken);
                    self.dispatch(&mut taken, pipeline, conn).await;
                    break true;
                }
                Ok(_) => {
                    self.connections.received(conn);
                    splitter.split(&mut buf, &mut taken);
                    self.dispatch(&mut taken, pipeline, conn).await;
                }
                Err(e) => {
                    tracing::debug!(input = %self.component.id, %peer, error = %e, "connection error");
                    self.metrics.error(&self.component, "connection_error");
                    break false;
                }
            }
            if buf.is_empty() {
                // Between records: give the allocation back.
                buf = BytesMut::new();
                conn.requests_complete();
            }
            let _ = memory.try_resize(buf.len().saturating_sub(FREE_PER_CONNECTION));
            conn.set_held(memory.held());
        };
        if !closed_by_sender && !buf.is_empty() {
            // Closed by the router (memory, the drain deadline) or broken inside a record.
            self.metrics.received(&self.component, 1, buf.len() as u64);
            self.metrics
                .events_dropped(&self.component, "connection_closed_mid_record", 1);
        }
    }

    /// Hold `bytes` of input memory for the connection; false when it was closed meanwhile or
    /// the read could never fit the input's memory.
    async fn hold(&self, memory: &mut InputCharge, bytes: usize, conn: &ConnState) -> bool {
        match self
            .connections
            .hold(
                memory,
                bytes,
                conn,
                &self.close_now,
                &self.metrics,
                &self.component,
            )
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(input = %self.component.id, error = %e, "closing a connection: its buffer cannot fit the inputs' memory budget; lower buffer_size");
                self.metrics.error(&self.component, "request_too_large");
                false
            }
        }
    }

    /// Count `taken` and push its records into the pipeline, waiting while buffers are full.
    async fn dispatch(&self, taken: &mut Vec<Taken>, pipeline: &Pipeline, conn: &ConnState) {
        let mut events = Vec::new();
        let mut bytes = 0;
        for t in taken.drain(..) {
            match t {
                Taken::Record(body) => {
                    bytes += body.len();
                    events.push(Event {
                        time_ns: now_ns(),
                        body: Bytes::from(body),
                    });
                }
                Taken::TooLarge => {
                    self.metrics.received(&self.component, 1, 0);
                    self.metrics
                        .events_dropped(&self.component, "record_too_large", 1);
                }
                Taken::Invalid(why) => {
                    tracing::debug!(input = %self.component.id, "{why}");
                    self.metrics.received(&self.component, 1, 0);
                    self.metrics
                        .events_dropped(&self.component, "invalid_json", 1);
                }
            }
        }
        if events.is_empty() {
            return;
        }
        self.metrics
            .received(&self.component, events.len() as u64, bytes as u64);
        conn.set_dispatching(true);
        if let Err(e) = pipeline
            .dispatch(Batch::new(self.tag.clone(), events))
            .await
        {
            // The refused push counted its events as dropped; the sender cannot be told.
            tracing::warn!(input = %self.component.id, error = %e, "a buffer refused records of this input");
            self.metrics.error(&self.component, "buffer_refused");
        }
        conn.set_dispatching(false);
    }
}
