//! Operating the router: metrics, signals and shutdown.

pub mod metrics;
pub mod shutdown;
