//! Asking a running router to reload (SIGHUP and `POST /api/v2/reload` do): the request
//! channel. What a reload does is [`crate::topology::reload`].

use tokio::sync::mpsc;

/// Ask a running router to reload (what SIGHUP and `POST /api/v2/reload` do).
#[derive(Clone)]
pub struct ReloadRequests(mpsc::Sender<()>);

impl ReloadRequests {
    /// Request a reload; requests made while one is pending are merged into it.
    pub fn request(&self) {
        let _ = self.0.try_send(());
    }

    /// The channel's sending side (for the HTTP server).
    pub fn sender(&self) -> mpsc::Sender<()> {
        self.0.clone()
    }
}

/// A connected pair: requests in, the reloader's receiving end out.
pub fn reload_channel() -> (ReloadRequests, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel(1);
    (ReloadRequests(tx), rx)
}
