//! The open connections of one input (forward, tcp), and which one to close when room is needed.
//!
//! Two kinds of room run out under hostile or careless clients:
//! - connection slots: TCP and unix have separate caps ([`Kind`]), so neither can starve the
//!   other. At a cap the longest-idle connection of that kind is closed for the newcomer
//!   ([`Connections::evict_idlest`]): a quiet log-driver connection keeps working below the cap,
//!   and a thousand idle sockets cannot lock every later sender out.
//! - the input's memory budget: when a connection has waited for memory a while, the
//!   connection whose incomplete request is the oldest gives up its bytes
//!   ([`Connections::evict_oldest_incomplete`]). Without that, connections each holding part of
//!   a request and each waiting for more would wait on one another forever.
//!
//! A connection mid-request or waiting on a push is never "idle", and one waiting on a push
//! is never closed for memory (its bytes return once the push does).

use crate::buffer::budget::{InputCharge, OverBudget};
use crate::ops::metrics::{Component, Metrics};
use crate::ops::shutdown::Shutdown;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Bytes each connection may hold outside the memory budget (its first read buffer). Bounded
/// by the connection caps: (1024 + 256) × 4 KiB = 5 MiB at the forward input's defaults.
pub const FREE_PER_CONNECTION: usize = 4 * 1024;
/// How long a connection waits for input memory before the oldest incomplete request is closed.
pub const MEMORY_EVICT_AFTER: Duration = Duration::from_secs(1);

/// Which listener a connection came from; each has its own cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Unix,
}

/// The registry of one input's open connections.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, (Kind, Arc<ConnState>)>>,
    next_id: AtomicU64,
    epoch: Epoch,
    /// When a connection was last closed for memory (ms since the epoch, +1); 0: never.
    last_memory_eviction_ms: AtomicU64,
}

struct Epoch(Instant);

impl Default for Epoch {
    fn default() -> Self {
        Epoch(Instant::now())
    }
}

/// What the registry knows of one connection, updated by the connection itself.
pub(crate) struct ConnState {
    /// Cancelled to close the connection (it stops at its next wait and counts why).
    pub close: CancellationToken,
    /// Microseconds since the registry's epoch when the last bytes arrived (finer than the
    /// request clock: two connections active within one millisecond keep their order).
    last_active_us: AtomicU64,
    /// When the request now being received started (ms since the epoch, +1); 0: none.
    request_started_ms: AtomicU64,
    /// True while a batch is being pushed (the connection waits on the buffers).
    dispatching: AtomicBool,
    /// Set once the registry chose to close this connection.
    closing: AtomicBool,
    /// Input memory the connection holds, as it last reported.
    held: AtomicUsize,
}

/// The next connection of `listener`, or `None` when `shutdown` comes first. A failed accept
/// (out of file descriptors, say) is logged and tried again after a pause.
pub(crate) async fn accept_tcp(
    listener: &tokio::net::TcpListener,
    component: &Component,
    shutdown: &mut Shutdown,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(e) => {
                    tracing::warn!(input = %component.id, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.wait() => return None,
        }
    }
}

/// A connection's place in the registry; leaves it when dropped.
pub(crate) struct Registration {
    id: u64,
    connections: Arc<Connections>,
    /// Shared with the registry.
    pub state: Arc<ConnState>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Connections {
    fn now_ms(&self) -> u64 {
        self.epoch.0.elapsed().as_millis() as u64
    }

    fn now_us(&self) -> u64 {
        self.epoch.0.elapsed().as_micros() as u64
    }

    /// Enter a new connection of `kind`.
    pub(crate) fn register(self: &Arc<Self>, kind: Kind) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            close: CancellationToken::new(),
            last_active_us: AtomicU64::new(self.now_us()),
            request_started_ms: AtomicU64::new(0),
            dispatching: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            held: AtomicUsize::new(0),
        });
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (kind, state.clone()));
        Registration {
            id,
            connections: self.clone(),
            state,
        }
    }

    /// Admit a new connection of `kind` under the cap `slots`: at the cap the longest-idle
    /// connection of `kind` is closed to make room (counted `idle_evicted`), and the newcomer
    /// waits only while every one is busy. Its slot and its place in the registry, or `None`
    /// when `shutdown` comes first.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        kind: Kind,
        slots: &Arc<Semaphore>,
        metrics: &Metrics,
        component: &Component,
        shutdown: &mut Shutdown,
    ) -> Option<(OwnedSemaphorePermit, Registration)> {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.evict_idlest(kind) {
                    metrics.error(component, "idle_evicted");
                    tracing::debug!(input = %component.id, "connection cap reached: closed the longest-idle connection for a new one");
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("never closed"),
                    _ = shutdown.wait() => return None,
                }
            }
        };
        Some((permit, self.register(kind)))
    }

    /// Close the connection of `kind` that has been idle longest (nothing received, no request
    /// under way, no push waiting). False when every one of them is busy.
    pub(crate) fn evict_idlest(&self, kind: Kind) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idlest = open
            .iter()
            .filter(|(_, (k, s))| *k == kind && s.is_idle())
            // Equal times go to the older registration, not to the map's hash order.
            .min_by_key(|(id, (_, s))| (s.last_active_us.load(Ordering::Relaxed), **id));
        match idlest {
            Some((_, (_, state))) => state.close_by_registry(),
            None => false,
        }
    }

    /// Close the connection whose incomplete request started longest ago, if it started at
    /// least `min_age` ago, holds input memory, and is not waiting on a push. At most one per
    /// `min_age` for the whole input, however many connections wait. False when none is closed.
    pub(crate) fn evict_oldest_incomplete(&self, min_age: Duration) -> bool {
        let now = self.now_ms();
        let min_age_ms = min_age.as_millis() as u64;
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let last = self.last_memory_eviction_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last - 1) < min_age_ms {
            return false;
        }
        let oldest = open
            .values()
            .filter(|(_, s)| {
                let started = s.request_started_ms.load(Ordering::Relaxed);
                started != 0
                    && s.held.load(Ordering::Relaxed) > 0
                    && !s.closing.load(Ordering::Relaxed)
                    && !s.dispatching.load(Ordering::Relaxed)
                    && now.saturating_sub(started - 1) >= min_age_ms
            })
            .min_by_key(|(_, s)| s.request_started_ms.load(Ordering::Relaxed));
        match oldest {
            Some((_, state)) => {
                self.last_memory_eviction_ms
                    .store(now + 1, Ordering::Relaxed);
                state.close_by_registry()
            }
            None => false,
        }
    }

    /// Hold `bytes` of input memory in `memory` for the connection `conn`, waiting for room. While
    /// it waits, the oldest incomplete request of the input is closed every
    /// [`MEMORY_EVICT_AFTER`] (possibly this connection's; counted as `memory_evicted` errors of
    /// `input`), so connections holding part of a request never wait on one another for good.
    /// `Ok(false)`: the connection was closed (by the registry or `stop`) while it waited.
    pub(crate) async fn hold(
        &self,
        memory: &mut InputCharge,
        bytes: usize,
        conn: &ConnState,
        stop: &CancellationToken,
        metrics: &Metrics,
        input: &Component,
    ) -> Result<bool, OverBudget> {
        if memory.try_resize(bytes)? {
            return Ok(true);
        }
        conn.set_held(memory.held());
        let mut evict_tick = tokio::time::interval(MEMORY_EVICT_AFTER);
        evict_tick.tick().await;
        loop {
            tokio::select! {
                held = memory.resize(bytes) => return held.map(|()| true),
                _ = evict_tick.tick() => {
                    if self.evict_oldest_incomplete(MEMORY_EVICT_AFTER) {
                        metrics.error(input, "memory_evicted");
                    }
                }
                _ = conn.close.cancelled() => return Ok(false),
                _ = stop.cancelled() => return Ok(false),
            }
        }
    }

    /// Bytes arrived on `state`'s connection: a request is under way, or goes on.
    pub(crate) fn received(&self, state: &ConnState) {
        let now = self.now_ms();
        state.last_active_us.store(self.now_us(), Ordering::Relaxed);
        if state.request_started_ms.load(Ordering::Relaxed) == 0 {
            state.request_started_ms.store(now + 1, Ordering::Relaxed);
        }
    }

    /// Whether `kind` has an open connection (for tests of the caps).
    #[cfg(test)]
    fn count(&self, kind: Kind) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.values().filter(|(k, _)| *k == kind).count()
    }
}

impl ConnState {
    /// Every request received so far was taken off the read buffer.
    pub(crate) fn requests_complete(&self) {
        self.request_started_ms.store(0, Ordering::Relaxed);
    }

    /// The input memory the connection holds now.
    pub(crate) fn set_held(&self, bytes: usize) {
        self.held.store(bytes, Ordering::Relaxed);
    }

    /// Mark the connection as waiting on a push (true) or done with it (false).
    pub(crate) fn set_dispatching(&self, dispatching: bool) {
        self.dispatching.store(dispatching, Ordering::Relaxed);
    }

    /// True once the registry chose to close this connection.
    #[cfg(test)]
    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    fn is_idle(&self) -> bool {
        !self.closing.load(Ordering::Relaxed)
            && !self.dispatching.load(Ordering::Relaxed)
            && self.request_started_ms.load(Ordering::Relaxed) == 0
    }

    fn close_by_registry(&self) -> bool {
        self.closing.store(true, Ordering::Relaxed);
        self.close.cancel();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_of_the_same_kind_is_evicted_never_a_busy_one() {
        let conns = Arc::new(Connections::default());
        let old_idle = conns.register(Kind::Tcp);
        let unix = conns.register(Kind::Unix);
        std::thread::sleep(Duration::from_millis(5));
        let mid_request = conns.register(Kind::Tcp);
        conns.received(&mid_request.state);
        let pushing = conns.register(Kind::Tcp);
        pushing.state.set_dispatching(true);
        let recent_idle = conns.register(Kind::Tcp);
        conns.received(&old_idle.state);
        old_idle.state.requests_complete();
        std::thread::sleep(Duration::from_millis(5));
        conns.received(&recent_idle.state);
        recent_idle.state.requests_complete();

        assert!(conns.evict_idlest(Kind::Tcp));
        assert!(old_idle.state.close.is_cancelled(), "idle longest");
        assert!(!unix.state.close.is_cancelled(), "another kind");
        assert!(conns.evict_idlest(Kind::Tcp));
        assert!(recent_idle.state.close.is_cancelled());
        assert!(!conns.evict_idlest(Kind::Tcp), "the rest are busy");
        assert!(!mid_request.state.close.is_cancelled());
        assert!(!pushing.state.close.is_cancelled());
        drop(old_idle);
        assert_eq!(conns.count(Kind::Tcp), 3);
    }

    #[test]
    fn memory_eviction_takes_the_oldest_incomplete_request_not_one_being_pushed() {
        let conns = Arc::new(Connections::default());
        let idle = conns.register(Kind::Tcp);
        let oldest = conns.register(Kind::Unix);
        conns.received(&oldest.state);
        oldest.state.set_held(100);
        let pushing = conns.register(Kind::Tcp);
        conns.received(&pushing.state);
        pushing.state.set_held(100);
        pushing.state.set_dispatching(true);
        let small = conns.register(Kind::Tcp);
        conns.received(&small.state);
        std::thread::sleep(Duration::from_millis(5));
        let newer = conns.register(Kind::Tcp);
        conns.received(&newer.state);
        newer.state.set_held(100);
        assert!(
            !conns.evict_oldest_incomplete(Duration::from_secs(60)),
            "none old enough"
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(conns.evict_oldest_incomplete(Duration::from_millis(5)));
        assert!(oldest.state.is_closing());
        assert!(
            !conns.evict_oldest_incomplete(Duration::from_millis(5)),
            "one per min_age"
        );
        assert!(conns.evict_oldest_incomplete(Duration::ZERO));
        assert!(newer.state.is_closing());
        assert!(!conns.evict_oldest_incomplete(Duration::ZERO));
        assert!(!idle.state.is_closing() && !pushing.state.is_closing());
        assert!(!small.state.is_closing(), "holds no budgeted memory");
        // A completed request is no longer incomplete.
        pushing.state.requests_complete();
        pushing.state.set_dispatching(false);
        assert!(!conns.evict_oldest_incomplete(Duration::ZERO));
    }
}
