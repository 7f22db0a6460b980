//! A shutdown signal handed to every long-running task: graceful shutdown is an argument of
//! `run`, not an afterthought (as in mini-redis).

use tokio::sync::watch;

/// The sending side: trigger shutdown once, from a signal handler or a test.
#[derive(Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// The receiving side: cheap to clone, one per task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Ask every task holding a [`Shutdown`] to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
    /// A new receiver.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// True once shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
    /// Wait until shutdown is triggered (returns at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: treat that as shutdown too.
        let _ = self.0.wait_for(|v| *v).await;
    }
}
