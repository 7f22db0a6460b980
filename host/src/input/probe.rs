//! The listener of `[INPUT] Name tcp` in a FireLens config: the `nc 127.0.0.1 8877` health
//! probe. It accepts a connection, reads and drops what it sends (a probe sends nothing that is
//! a log) and closes it when the peer does or after [`IDLE`]; at most [`MAX_CONNECTIONS`] at
//! once. It stops with the router.

use crate::ops::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Most probe connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// A probe connection is closed after this long even if the peer keeps it open.
pub const IDLE: Duration = Duration::from_secs(10);

/// A bound health-probe listener.
pub struct ProbeListener {
    listener: TcpListener,
}

impl ProbeListener {
    /// Bind `addr` (`host:port`).
    pub async fn bind(addr: &str) -> std::io::Result<ProbeListener> {
        Ok(ProbeListener {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// Serve probes until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit,
                _ = shutdown.wait() => return,
            };
            let Ok(permit) = permit else { return };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.wait() => return,
            };
            let Ok((mut stream, _)) = accepted else {
                continue;
            };
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                let drain =
                    async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
                let _ = tokio::time::timeout(IDLE, drain).await;
                drop(permit);
            });
        }
    }
}
