//! The plugin's log, written into the router's log tagged with the plugin's name (the
//! router truncates long messages and rate-limits frequent ones: do not log per event).
//!
//! ```
//! use wasm_router_sdk::log;
//!
//! let fields = 3;
//! log::info!("redacting {fields} fields");
//! log::emit(log::Level::Warn, "a plain message");
//! ```

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something the plugin could not handle.
    Error,
}

/// Writes one message.
pub fn emit(level: Level, message: &str) {
    crate::host::log(level, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace {
    ($($arg:tt)+) => { $crate::log::emit($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($arg:tt)+) => { $crate::log::emit($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($arg:tt)+) => { $crate::log::emit($crate::log::Level::Info, &::std::format!($($arg)+)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($arg:tt)+) => { $crate::log::emit($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($arg:tt)+) => { $crate::log::emit($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

/// Logs at trace level, `format!`-style.
#[doc(inline)]
pub use crate::__log_trace as trace;

/// Logs at debug level, `format!`-style.
#[doc(inline)]
pub use crate::__log_debug as debug;

/// Logs at info level, `format!`-style.
#[doc(inline)]
pub use crate::__log_info as info;

/// Logs at warn level, `format!`-style.
#[doc(inline)]
pub use crate::__log_warn as warn;

/// Logs at error level, `format!`-style.
#[doc(inline)]
pub use crate::__log_error as error;
