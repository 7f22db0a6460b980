//! Operating the router: metrics, the health and metrics HTTP server, the router's own logs,
//! signals, shutdown and reload.

pub mod delivery_health;
pub mod fluent_bit_api;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod prometheus_text;
pub mod reload;
pub mod shutdown;
