//! Datadog's limits per request of the Logs intake, as documented at
//! <https://docs.datadoghq.com/api/latest/logs/send-logs/>:
//!
//! - maximum content size per payload (uncompressed): 5 MB;
//! - maximum size of a single log: 1 MB;
//! - maximum array size: 1000 entries.
//!
//! "Any log exceeding 1MB is accepted and truncated by Datadog" (a 2xx either way). The plugin
//! truncates a too-long `message` itself at the same size, so the payload room and bandwidth
//! are not spent on bytes Datadog throws away; an entry still over 1 MB after that (large
//! other attributes) is sent as it is, for Datadog to truncate, unless it cannot fit in a
//! payload at all: then it is left out and counted (`entries_too_large`). Megabytes are
//! taken as 10^6 bytes, the safe reading.

/// Largest request body, uncompressed.
pub const MAX_REQUEST_BYTES: usize = 5_000_000;

/// Largest single log entry (its JSON object).
pub const MAX_ENTRY_BYTES: usize = 1_000_000;

/// Most entries in one request's array.
pub const MAX_ENTRIES_PER_REQUEST: usize = 1000;
