//! Events → Firehose records → PutRecordBatch requests within the API's limits. Each event is
//! rendered and ends with `\n` (Firehose adds no delimiter); with `simple_aggregation` several
//! events share one record; with `compression = "gzip"` each record is compressed.
//!
//! Limits: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>

use super::config::{FirehoseSettings, Oversize, RecordCompression};
use crate::event::Batch;
use crate::output::DeliveryProgress;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Write as _;

/// Most records in one PutRecordBatch call.
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// Most bytes of record data in one PutRecordBatch call (before base64).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes in one record (before base64): 1,000 KiB.
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;
/// Room kept free in an aggregated record that is then compressed (gzip and zstd can grow
/// incompressible data by a few bytes per block plus their headers).
pub const GZIP_HEADROOM: usize = 1024;
/// Ends a record cut to [`MAX_RECORD_BYTES`] (the Go plugin's marker), before the newline.
pub const TRUNCATION_MARKER: &str = "[Truncated...]";

/// One Firehose record and the events of the batch it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirehoseRecord {
    /// The bytes Firehose stores.
    pub data: Bytes,
    /// Indexes of the events in it (one, or several when aggregated).
    pub events: Vec<usize>,
}

/// What building the records noticed, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Events cut to the record size limit.
    pub truncated: u64,
    /// Events with invalid UTF-8 replaced.
    pub invalid_utf8: u64,
}

/// Render the pending events of `batch` into records; events that cannot be sent are rejected
/// in `progress`.
pub fn build_records(
    settings: &FirehoseSettings,
    batch: &Batch,
    progress: &mut DeliveryProgress,
) -> (VecDeque<FirehoseRecord>, BuildStats) {
    let mut stats = BuildStats::default();
    let mut records = VecDeque::new();
    let limit = if settings.compression.is_some() {
        MAX_RECORD_BYTES - GZIP_HEADROOM
    } else {
        MAX_RECORD_BYTES
    };
    let mut aggregate: Option<(String, Vec<usize>)> = None;
    let mut line = String::new();
    for (index, event) in batch.events.iter().enumerate() {
        if !progress.is_pending(index) {
            continue;
        }
        line.clear();
        match settings.renderer.render(event, &mut line) {
            Ok(r) => stats.invalid_utf8 += u64::from(r.invalid_utf8),
            Err(e) => {
                progress.reject([index], e.reason(), || e.to_string());
                continue;
            }
        }
        // An empty `log_key` value or an empty record is not sent, as in Fluent Bit's
        // kinesis_firehose (which discards a rendering of two bytes or less); here it is counted.
        if line.is_empty() || line == "{}" {
            progress.reject([index], "empty_record", || {
                "an empty record (an empty log_key value or record); Firehose is not sent empty records".into()
            });
            continue;
        }
        line.push('\n');
        if line.len() > limit {
            match settings.oversize {
                Oversize::Drop => {
                    progress.reject([index], "record_too_large", || {
                        format!("an event over Firehose's {MAX_RECORD_BYTES}-byte record limit; set oversize_records = \"truncate\" to keep its start")
                    });
                    continue;
                }
                Oversize::Truncate => {
                    truncate_line(&mut line, limit);
                    stats.truncated += 1;
                }
            }
        }
        if !settings.simple_aggregation {
            push_record(
                &mut records,
                settings.compression,
                line.as_bytes(),
                vec![index],
            );
            continue;
        }
        if let Some((text, _)) = &aggregate
            && text.len() + line.len() > limit
        {
            let (text, events) = aggregate.take().expect("checked");
            push_record(&mut records, settings.compression, text.as_bytes(), events);
        }
        let (text, events) = aggregate.get_or_insert_with(|| (String::new(), Vec::new()));
        text.push_str(&line);
        events.push(index);
    }
    if let Some((text, events)) = aggregate {
        push_record(&mut records, settings.compression, text.as_bytes(), events);
    }
    (records, stats)
}

fn push_record(
    records: &mut VecDeque<FirehoseRecord>,
    compression: Option<RecordCompression>,
    data: &[u8],
    events: Vec<usize>,
) {
    let data = match compression {
        Some(RecordCompression::Gzip) => Bytes::from(gzip_bytes(data)),
        Some(RecordCompression::Zstd) => {
            Bytes::from(zstd::bulk::compress(data, 0).expect("compressing in memory cannot fail"))
        }
        None => Bytes::copy_from_slice(data),
    };
    records.push_back(FirehoseRecord { data, events });
}

/// gzip `data` (default level).
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Cut a newline-terminated line to `limit` bytes on a UTF-8 boundary: text, marker, newline.
pub fn truncate_line(line: &mut String, limit: usize) {
    let mut cut = limit - TRUNCATION_MARKER.len() - 1;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    line.push_str(TRUNCATION_MARKER);
    line.push('\n');
}

/// Take the next request's records from the front of `pending`: at most
/// [`MAX_RECORDS_PER_REQUEST`] records and [`MAX_REQUEST_BYTES`] bytes.
pub fn next_request(pending: &mut VecDeque<FirehoseRecord>) -> Vec<FirehoseRecord> {
    crate::output::aws::put_records::take_request(
        pending,
        MAX_RECORDS_PER_REQUEST,
        MAX_REQUEST_BYTES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::net::aws_connection::AwsConnectionConfig;
    use crate::output::aws::RecordRenderer;

    fn settings() -> FirehoseSettings {
        FirehoseSettings {
            connection: AwsConnectionConfig::default(),
            delivery_stream: "d".into(),
            renderer: RecordRenderer {
                log_key: Some("log".into()),
                ..Default::default()
            },
            compression: None,
            simple_aggregation: false,
            oversize: Oversize::Truncate,
            ignored_options: vec![],
        }
    }

    fn batch(logs: &[String]) -> Batch {
        let events = logs
            .iter()
            .map(|l| {
                let mut b = Vec::new();
                rmp::encode::write_map_len(&mut b, 1).unwrap();
                rmp::encode::write_str(&mut b, "log").unwrap();
                rmp::encode::write_str(&mut b, l).unwrap();
                Event {
                    time_ns: 1,
                    body: b.into(),
                }
            })
            .collect();
        Batch::new("t", events)
    }

    #[test]
    fn one_record_per_event_with_a_newline() {
        let mut dropped = DeliveryProgress::new(16);
        let (records, _) =
            build_records(&settings(), &batch(&["a".into(), "b".into()]), &mut dropped);
        assert_eq!(
            records.iter().map(|r| &r.data[..]).collect::<Vec<_>>(),
            vec![&b"a\n"[..], b"b\n"]
        );
        assert_eq!(records[1].events, vec![1]);
        assert!(dropped.rejections().is_empty());
    }

    #[test]
    fn empty_records_are_not_sent_but_counted() {
        let mut progress = DeliveryProgress::new(3);
        let (records, _) = build_records(
            &settings(),
            &batch(&["a".into(), String::new(), "b".into()]),
            &mut progress,
        );
        assert_eq!(
            records.iter().map(|r| &r.data[..]).collect::<Vec<_>>(),
            vec![&b"a\n"[..], b"b\n"]
        );
        let rejected = progress.rejections();
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            (rejected[0].reason.as_str(), &rejected[0].events[..]),
            ("empty_record", &[1][..])
        );
    }

    #[test]
    fn twelve_hundred_records_make_three_requests() {
        let logs: Vec<String> = (0..1200).map(|i| format!("event {i}")).collect();
        let (mut records, _) =
            build_records(&settings(), &batch(&logs), &mut DeliveryProgress::new(1200));
        let sizes: Vec<usize> =
            std::iter::from_fn(|| Some(next_request(&mut records)).filter(|r| !r.is_empty()))
                .map(|r| r.len())
                .collect();
        assert_eq!(sizes, vec![500, 500, 200]);
    }

    #[test]
    fn requests_stay_under_4_mib() {
        let logs: Vec<String> = (0..10).map(|_| "x".repeat(900 * 1024)).collect();
        let (mut records, _) =
            build_records(&settings(), &batch(&logs), &mut DeliveryProgress::new(16));
        let mut counts = Vec::new();
        loop {
            let r = next_request(&mut records);
            if r.is_empty() {
                break;
            }
            assert!(r.iter().map(|r| r.data.len()).sum::<usize>() <= MAX_REQUEST_BYTES);
            counts.push(r.len());
        }
        assert_eq!(counts, vec![4, 4, 2]);
    }

    #[test]
    fn oversize_records_are_truncated_or_dropped() {
        let big = "é".repeat(MAX_RECORD_BYTES);
        let (records, stats) = build_records(
            &settings(),
            &batch(std::slice::from_ref(&big)),
            &mut DeliveryProgress::new(16),
        );
        assert_eq!(stats.truncated, 1);
        let data = std::str::from_utf8(&records[0].data).unwrap();
        assert!(data.len() <= MAX_RECORD_BYTES && data.ends_with("[Truncated...]\n"));
        let exact = "y".repeat(MAX_RECORD_BYTES - 1);
        let (records, stats) = build_records(
            &settings(),
            &batch(&[exact]),
            &mut DeliveryProgress::new(16),
        );
        assert_eq!(
            (records[0].data.len(), stats.truncated),
            (MAX_RECORD_BYTES, 0),
            "1,000 KiB including the newline fits"
        );
        let mut dropped = DeliveryProgress::new(16);
        let s = FirehoseSettings {
            oversize: Oversize::Drop,
            ..settings()
        };
        let (records, _) = build_records(&s, &batch(&[big, "small".into()]), &mut dropped);
        assert_eq!(records.len(), 1);
        assert_eq!(dropped.rejections()[0].reason, "record_too_large");
        assert_eq!(dropped.rejections()[0].events, vec![0]);
    }

    #[test]
    fn aggregation_packs_events_up_to_the_record_limit() {
        let s = FirehoseSettings {
            simple_aggregation: true,
            ..settings()
        };
        let logs: Vec<String> = (0..3).map(|_| "z".repeat(400 * 1024)).collect();
        let (records, _) = build_records(&s, &batch(&logs), &mut DeliveryProgress::new(16));
        assert_eq!(
            records.iter().map(|r| r.events.clone()).collect::<Vec<_>>(),
            vec![vec![0, 1], vec![2]]
        );
        assert!(records.iter().all(|r| r.data.len() <= MAX_RECORD_BYTES));
        let (records, _) = build_records(
            &s,
            &batch(&["a".into(), "b".into()]),
            &mut DeliveryProgress::new(16),
        );
        assert_eq!(&records[0].data[..], b"a\nb\n");
    }

    #[test]
    fn gzip_compresses_each_record() {
        let s = FirehoseSettings {
            compression: Some(RecordCompression::Gzip),
            ..settings()
        };
        let (records, _) = build_records(
            &s,
            &batch(&["hello".into()]),
            &mut DeliveryProgress::new(16),
        );
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&records[0].data[..]),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "hello\n");
    }
}
