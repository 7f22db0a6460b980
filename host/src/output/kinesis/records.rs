//! Events → Kinesis records (data + partition key) → PutRecords requests within the API's
//! limits. Each event is rendered (ending with `\n` when `append_newline`), compressed when
//! asked, and given the partition key from its record field or a random one.
//!
//! Limits: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html>

use super::config::{Compression, KinesisSettings};
use crate::event::Batch;
use crate::event::json;
use crate::output::DeliveryProgress;
use crate::output::firehose::config::Oversize;
use crate::output::firehose::records::TRUNCATION_MARKER;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Write as _;

/// Most records in one PutRecords call.
pub const MAX_RECORDS_PER_REQUEST: usize = 500;
/// Most bytes in one PutRecords call, data and partition keys together.
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// Most bytes in one record, data and partition key together (before base64).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Most Unicode characters in a partition key; a longer field value is cut to this.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// One Kinesis record and the event of the batch it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KinesisRecord {
    /// The bytes Kinesis stores.
    pub data: Bytes,
    /// Its partition key.
    pub partition_key: String,
    /// Index of the event in the batch.
    pub event: usize,
}

impl KinesisRecord {
    /// What the record counts against the record and request limits.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// What building the records noticed, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Events with invalid UTF-8 mapped.
    pub invalid_utf8: u64,
    /// Events cut to the record size limit (`oversize_records = "truncate"`).
    pub truncated: u64,
    /// Events that got a random partition key although `partition_key` is set (the record has
    /// no such string or number).
    pub random_keys: u64,
}

/// Render the pending events of `batch` into records; events that cannot be sent are rejected
/// in `progress` (`record_too_large`, `empty_record`, and the renderer's reasons).
pub fn build_records(
    settings: &KinesisSettings,
    batch: &Batch,
    progress: &mut DeliveryProgress,
) -> (VecDeque<KinesisRecord>, BuildStats) {
    let mut stats = BuildStats::default();
    let mut records = VecDeque::new();
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
        // As Fluent Bit's kinesis_streams (which discards a rendering of two bytes or less), an
        // empty `log_key` value or an empty record is not sent; here it is counted.
        if line.is_empty() || line == "{}" {
            progress.reject([index], "empty_record", || {
                "an empty record (an empty log_key value or record); Kinesis is not sent empty records".into()
            });
            continue;
        }
        if settings.append_newline {
            line.push('\n');
        }
        let partition_key = match &settings.partition_key {
            None => random_key(),
            Some(path) => field_key(&event.body, path).unwrap_or_else(|| {
                stats.random_keys += 1;
                random_key()
            }),
        };
        let max_data = MAX_RECORD_BYTES - partition_key.len();
        let mut data = compress(settings.compression, line.as_bytes());
        if data.len() > max_data {
            let cut = match settings.oversize {
                Oversize::Truncate => truncate_to_fit(settings.compression, &line, max_data),
                Oversize::Drop => None,
            };
            match cut {
                Some(cut) => {
                    data = cut;
                    stats.truncated += 1;
                }
                None => {
                    let size = data.len() + partition_key.len();
                    progress.reject([index], "record_too_large", || {
                        format!("an event of {size} bytes (data and partition key) is over Kinesis' {MAX_RECORD_BYTES}-byte record limit")
                    });
                    continue;
                }
            }
        }
        records.push_back(KinesisRecord {
            data,
            partition_key,
            event: index,
        });
    }
    (records, stats)
}

/// A random partition key: 16 hex digits (the stream spreads them over its shards).
pub fn random_key() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The value at `path` in the msgpack record `body`, as a partition key: a non-empty string
/// (cut to [`MAX_PARTITION_KEY_CHARS`]) or a number's text; `None` otherwise.
pub fn field_key(body: &[u8], path: &[String]) -> Option<String> {
    let (last, outer) = path.split_last()?;
    let mut map = body;
    for key in outer {
        map = lookup(map, key)?;
    }
    let value = lookup(map, last)?;
    let text = match json::str_payload(value) {
        Some(s) => String::from_utf8_lossy(s).into_owned(),
        None => {
            let mut text = String::new();
            json::write_json(value, &mut text).ok()?;
            let first = text.chars().next()?;
            if !(first == '-' || first.is_ascii_digit()) {
                return None;
            }
            text
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_PARTITION_KEY_CHARS) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    })
}

fn lookup<'a>(map: &'a [u8], key: &str) -> Option<&'a [u8]> {
    json::map_entries(map)
        .ok()?
        .filter_map(Result::ok)
        .find(|(k, _)| json::str_payload(k) == Some(key.as_bytes()))
        .map(|(_, v)| v)
}

/// `line` cut so that its record fits `max` bytes, ending with [`TRUNCATION_MARKER`], as the Go
/// plugin does: uncompressed, cut to the limit (on a UTF-8 boundary); compressed, cut to 90 %
/// and compressed again, at most 10 times (`None` if it still does not fit).
fn truncate_to_fit(compression: Compression, line: &str, max: usize) -> Option<Bytes> {
    let cut = |text: &str, at: usize| {
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        format!("{}{TRUNCATION_MARKER}", &text[..at])
    };
    if compression == Compression::None {
        let text = cut(line, max.saturating_sub(TRUNCATION_MARKER.len()));
        return Some(Bytes::from(text.into_bytes()));
    }
    let mut keep = line.len();
    for _ in 0..10 {
        keep = keep * 9 / 10;
        let data = compress(compression, cut(line, keep).as_bytes());
        if data.len() <= max {
            return Some(data);
        }
    }
    None
}

fn compress(compression: Compression, data: &[u8]) -> Bytes {
    match compression {
        Compression::None => Bytes::copy_from_slice(data),
        Compression::Gzip => Bytes::from(crate::output::firehose::records::gzip_bytes(data)),
        Compression::Zlib => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(data)
                .expect("writing to a Vec cannot fail");
            Bytes::from(encoder.finish().expect("writing to a Vec cannot fail"))
        }
    }
}

/// Take the next request's records from the front of `pending`: at most
/// [`MAX_RECORDS_PER_REQUEST`] records and [`MAX_REQUEST_BYTES`] bytes.
pub fn next_request(pending: &mut VecDeque<KinesisRecord>) -> Vec<KinesisRecord> {
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
    use rmpv::Value as V;

    fn settings() -> KinesisSettings {
        KinesisSettings {
            connection: AwsConnectionConfig::default(),
            stream: "s".into(),
            partition_key: None,
            renderer: RecordRenderer {
                log_key: Some("log".into()),
                ..Default::default()
            },
            append_newline: true,
            compression: Compression::None,
            oversize: Oversize::Drop,
            ignored_options: vec![],
        }
    }

    fn event(v: V) -> Event {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &v).unwrap();
        Event {
            time_ns: 1,
            body: b.into(),
        }
    }

    fn batch(logs: &[String]) -> Batch {
        let events = logs
            .iter()
            .map(|l| event(V::Map(vec![(V::from("log"), V::from(l.as_str()))])))
            .collect();
        Batch::new("t", events)
    }

    fn request_sizes(records: &mut VecDeque<KinesisRecord>) -> Vec<usize> {
        std::iter::from_fn(|| Some(next_request(records)).filter(|r| !r.is_empty()))
            .map(|r| {
                assert!(r.iter().map(KinesisRecord::size).sum::<usize>() <= MAX_REQUEST_BYTES);
                r.len()
            })
            .collect()
    }

    #[test]
    fn one_record_per_event_with_a_random_key() {
        let mut progress = DeliveryProgress::new(16);
        let (records, _) = build_records(
            &settings(),
            &batch(&["a".into(), "b".into()]),
            &mut progress,
        );
        assert_eq!(&records[0].data[..], b"a\n");
        assert_eq!(records[1].event, 1);
        assert_eq!(records[0].partition_key.len(), 16);
        assert_ne!(records[0].partition_key, records[1].partition_key);
        let s = KinesisSettings {
            append_newline: false,
            ..settings()
        };
        let (records, _) = build_records(&s, &batch(&["a".into()]), &mut progress);
        assert_eq!(&records[0].data[..], b"a");
    }

    #[test]
    fn twelve_hundred_records_make_three_requests() {
        let logs: Vec<String> = (0..1200).map(|i| format!("event {i}")).collect();
        let (mut records, _) =
            build_records(&settings(), &batch(&logs), &mut DeliveryProgress::new(1200));
        assert_eq!(request_sizes(&mut records), vec![500, 500, 200]);
    }

    #[test]
    fn requests_stay_under_5_mib_counting_partition_keys() {
        // 1 MiB - 16 bytes of data + 16 of key: exactly one record limit each, five per request.
        let logs: Vec<String> = (0..11)
            .map(|_| "x".repeat(MAX_RECORD_BYTES - 16 - 1))
            .collect();
        let (mut records, _) =
            build_records(&settings(), &batch(&logs), &mut DeliveryProgress::new(16));
        assert_eq!(records.len(), 11, "a record of exactly 1 MiB fits");
        assert_eq!(request_sizes(&mut records), vec![5, 5, 1]);
    }

    #[test]
    fn oversize_records_are_dropped_and_counted() {
        let big = "y".repeat(MAX_RECORD_BYTES - 16);
        let mut progress = DeliveryProgress::new(16);
        let (records, _) =
            build_records(&settings(), &batch(&[big, "small".into()]), &mut progress);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].event, 1);
        assert_eq!(progress.rejections()[0].reason, "record_too_large");
        assert_eq!(progress.rejections()[0].events, vec![0]);
    }

    #[test]
    fn oversize_records_are_truncated_as_the_go_plugin_does() {
        let s = KinesisSettings {
            oversize: Oversize::Truncate,
            ..settings()
        };
        let big = "é".repeat(MAX_RECORD_BYTES);
        let mut progress = DeliveryProgress::new(2);
        let (records, stats) = build_records(&s, &batch(std::slice::from_ref(&big)), &mut progress);
        assert!(progress.rejections().is_empty());
        assert_eq!(stats.truncated, 1);
        assert!(records[0].size() <= MAX_RECORD_BYTES);
        let text = std::str::from_utf8(&records[0].data).unwrap();
        assert!(
            text.ends_with(TRUNCATION_MARKER),
            "the newline is cut off, as in Go"
        );
        // Compressed: hard to compress text, cut until the compressed record fits.
        let noise: String = (0..MAX_RECORD_BYTES * 2)
            .map(|_| char::from(b'!' + fastrand::u8(..90)))
            .collect();
        let s = KinesisSettings {
            compression: Compression::Gzip,
            ..s
        };
        let (records, stats) = build_records(&s, &batch(&[noise]), &mut progress);
        assert_eq!(stats.truncated, 1);
        assert!(records[0].size() <= MAX_RECORD_BYTES);
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
            records.iter().map(|r| r.event).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(progress.rejections()[0].reason, "empty_record");
        assert_eq!(progress.rejections()[0].events, vec![1]);
    }

    #[test]
    fn partition_key_from_a_field_nested_or_random() {
        let s = KinesisSettings {
            partition_key: Some(vec!["k8s".into(), "pod".into()]),
            renderer: RecordRenderer::default(),
            ..settings()
        };
        let events = vec![
            event(V::Map(vec![(
                V::from("k8s"),
                V::Map(vec![(V::from("pod"), V::from("web-1"))]),
            )])),
            event(V::Map(vec![(
                V::from("k8s"),
                V::Map(vec![(V::from("pod"), V::from(42))]),
            )])),
            event(V::Map(vec![(V::from("other"), V::from("x"))])),
            event(V::Map(vec![(
                V::from("k8s"),
                V::Map(vec![(V::from("pod"), V::from("é".repeat(300)))]),
            )])),
        ];
        let (records, stats) =
            build_records(&s, &Batch::new("t", events), &mut DeliveryProgress::new(16));
        assert_eq!(records[0].partition_key, "web-1");
        assert_eq!(records[1].partition_key, "42");
        assert_eq!(records[2].partition_key.len(), 16);
        assert_eq!(
            records[3].partition_key.chars().count(),
            MAX_PARTITION_KEY_CHARS
        );
        assert_eq!(stats.random_keys, 1);
    }

    #[test]
    fn compression_per_record() {
        for (compression, decode) in [
            (
                Compression::Gzip,
                (|d: &[u8]| {
                    let mut t = String::new();
                    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(d), &mut t)
                        .unwrap();
                    t
                }) as fn(&[u8]) -> String,
            ),
            (Compression::Zlib, |d: &[u8]| {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(d), &mut t)
                    .unwrap();
                t
            }),
        ] {
            let s = KinesisSettings {
                compression,
                ..settings()
            };
            let (records, _) =
                build_records(&s, &batch(&["hello".into()]), &mut DeliveryProgress::new(4));
            assert_eq!(decode(&records[0].data), "hello\n");
        }
    }
}
