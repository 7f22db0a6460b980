//! Turns the events of one log stream into PutLogEvents batches that the API accepts:
//! sorted by time (stable, so equal timestamps keep their arrival order), and split so that no
//! batch exceeds [`MAX_EVENTS_PER_BATCH`] events, [`MAX_BATCH_BYTES`] bytes (message bytes +
//! [`EVENT_OVERHEAD_BYTES`] per event) or a [`MAX_BATCH_SPAN_MS`] time span. Also the per-event
//! rules applied before anything is sent: the time window the API accepts and the size cap.
//!
//! Limits: <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html>

/// Most events in one PutLogEvents call.
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;
/// Most bytes in one PutLogEvents call: Σ (UTF-8 message bytes + 26).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What each event adds to the batch size besides its message.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// A batch must not span 24 hours or more (first to last timestamp).
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Events older than 14 days are rejected by the API.
pub const MAX_EVENT_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// Events more than 2 hours in the future are rejected by the API.
pub const MAX_EVENT_FUTURE_MS: i64 = 2 * 3600 * 1000;
/// Default cap of one message: AWS's limit, 1 MiB − 26 ("each log event can be no larger than
/// 1 MB", PutLogEvents; Fluent Bit follows it since 4.2.2 — before, 256 KiB − 26).
pub const DEFAULT_MAX_EVENT_SIZE: usize = MAX_EVENT_SIZE_LIMIT;
/// The largest `max_event_size` the API allows (1 MiB per event including the overhead).
pub const MAX_EVENT_SIZE_LIMIT: usize = MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES;
/// Appended to a message cut to the size cap (the Go plugin's marker).
pub const TRUNCATION_MARKER: &str = "[Truncated...]";

/// One log event as PutLogEvents takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// Its index in the batch the runner handed over (to report drops).
    pub index: usize,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The message (never empty).
    pub message: String,
}

impl LogEvent {
    /// What this event counts towards [`MAX_BATCH_BYTES`].
    pub fn size(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD_BYTES
    }
}

/// One PutLogEvents call's worth of events for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutBatch {
    /// The log group.
    pub group: String,
    /// The log stream.
    pub stream: String,
    /// The events, in chronological order.
    pub events: Vec<LogEvent>,
    /// Σ [`LogEvent::size`].
    pub bytes: usize,
}

/// Where an event's time falls relative to what the API accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeCheck {
    /// Inside [now − 14 d, now + 2 h].
    Accepted,
    /// More than 14 days old.
    TooOld,
    /// More than 2 hours ahead.
    TooNew,
}

/// Check `timestamp_ms` against the API's window at `now_ms`.
pub fn check_time(timestamp_ms: i64, now_ms: i64) -> TimeCheck {
    if timestamp_ms < now_ms - MAX_EVENT_AGE_MS {
        TimeCheck::TooOld
    } else if timestamp_ms > now_ms + MAX_EVENT_FUTURE_MS {
        TimeCheck::TooNew
    } else {
        TimeCheck::Accepted
    }
}

/// Cut `message` to at most `max` bytes on a UTF-8 boundary, ending with
/// [`TRUNCATION_MARKER`]. Returns whether it was cut.
pub fn truncate_message(message: &mut String, max: usize) -> bool {
    if message.len() <= max {
        return false;
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARKER.len());
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    if max >= TRUNCATION_MARKER.len() {
        message.push_str(TRUNCATION_MARKER);
    }
    true
}

/// Sort one stream's events (stable) and split them into batches within every limit.
pub fn split_stream(group: &str, stream: &str, mut events: Vec<LogEvent>) -> Vec<PutBatch> {
    events.sort_by_key(|e| e.timestamp_ms);
    let mut batches = Vec::new();
    let mut current: Option<PutBatch> = None;
    for event in events {
        let fits = current.as_ref().is_some_and(|b| {
            b.events.len() < MAX_EVENTS_PER_BATCH
                && b.bytes + event.size() <= MAX_BATCH_BYTES
                && event.timestamp_ms - b.events[0].timestamp_ms < MAX_BATCH_SPAN_MS
        });
        if !fits {
            batches.extend(current.take());
            current = Some(PutBatch {
                group: group.to_string(),
                stream: stream.to_string(),
                events: Vec::new(),
                bytes: 0,
            });
        }
        let batch = current.as_mut().expect("a batch is open");
        batch.bytes += event.size();
        batch.events.push(event);
    }
    batches.extend(current);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, len: usize) -> LogEvent {
        LogEvent {
            index: 0,
            timestamp_ms: ts,
            message: "x".repeat(len),
        }
    }

    fn assert_within_limits(batches: &[PutBatch]) {
        for b in batches {
            assert!(!b.events.is_empty());
            assert!(b.events.len() <= MAX_EVENTS_PER_BATCH);
            assert_eq!(b.bytes, b.events.iter().map(LogEvent::size).sum::<usize>());
            assert!(b.bytes <= MAX_BATCH_BYTES, "{} bytes", b.bytes);
            assert!(
                b.events
                    .windows(2)
                    .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
            );
            let span = b.events.last().unwrap().timestamp_ms - b.events[0].timestamp_ms;
            assert!(span < MAX_BATCH_SPAN_MS);
        }
    }

    #[test]
    fn ten_thousand_and_one_events_make_two_batches() {
        let events: Vec<_> = (0..10_001).map(|i| ev(i, 10)).collect();
        let batches = split_stream("g", "s", events);
        assert_eq!(
            batches.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            vec![10_000, 1]
        );
        assert_within_limits(&batches);
    }

    #[test]
    fn bytes_limit_counts_26_bytes_per_event() {
        // 1,048,576 / (1000 + 26) = 1022.0…: 1022 events fit, the 1023rd starts a new batch.
        let events: Vec<_> = (0..1023).map(|i| ev(i, 1000)).collect();
        let batches = split_stream("g", "s", events);
        assert_eq!(
            batches.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            vec![1022, 1]
        );
        assert_within_limits(&batches);
        // Exactly at the limit is allowed.
        let exact = vec![
            ev(0, MAX_BATCH_BYTES / 2 - 26),
            ev(1, MAX_BATCH_BYTES / 2 - 26),
        ];
        assert_eq!(split_stream("g", "s", exact).len(), 1);
    }

    #[test]
    fn a_24_hour_span_splits() {
        let hour = 3600 * 1000;
        let events: Vec<_> = (0..=25).map(|h| ev(h * hour, 5)).collect();
        let batches = split_stream("g", "s", events);
        assert_eq!(
            batches.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            vec![24, 2]
        );
        assert_within_limits(&batches);
    }

    #[test]
    fn events_are_sorted_stably() {
        let events = vec![
            LogEvent {
                index: 0,
                timestamp_ms: 5,
                message: "b".into(),
            },
            LogEvent {
                index: 1,
                timestamp_ms: 1,
                message: "a".into(),
            },
            LogEvent {
                index: 2,
                timestamp_ms: 5,
                message: "c".into(),
            },
        ];
        let b = split_stream("g", "s", events);
        let order: Vec<_> = b[0].events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn time_window() {
        let now = 1_700_000_000_000;
        assert_eq!(check_time(now, now), TimeCheck::Accepted);
        assert_eq!(check_time(now - MAX_EVENT_AGE_MS, now), TimeCheck::Accepted);
        assert_eq!(
            check_time(now - MAX_EVENT_AGE_MS - 1, now),
            TimeCheck::TooOld
        );
        assert_eq!(
            check_time(now + MAX_EVENT_FUTURE_MS, now),
            TimeCheck::Accepted
        );
        assert_eq!(
            check_time(now + MAX_EVENT_FUTURE_MS + 1, now),
            TimeCheck::TooNew
        );
    }

    #[test]
    fn truncation_respects_utf8_and_the_cap() {
        let mut m = "é".repeat(200);
        assert!(truncate_message(&mut m, 101));
        assert!(m.len() <= 101 && m.ends_with(TRUNCATION_MARKER));
        assert!(
            m.trim_end_matches(TRUNCATION_MARKER)
                .chars()
                .all(|c| c == 'é')
        );
        let mut m = "x".repeat(DEFAULT_MAX_EVENT_SIZE + 1);
        assert!(truncate_message(&mut m, DEFAULT_MAX_EVENT_SIZE));
        assert_eq!(m.len(), DEFAULT_MAX_EVENT_SIZE);
        let mut short = "fine".to_string();
        assert!(!truncate_message(&mut short, 4));
        assert_eq!(DEFAULT_MAX_EVENT_SIZE, 1_048_550);
    }
}
