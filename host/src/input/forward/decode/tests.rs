//! Decoder behaviour end to end, on msgpack built byte by byte.

use super::*;
use crate::event::Event;
use std::io::Write;

const NOW_NS: u64 = 1_111_111_111_000_000_000;

fn fixed_clock() -> u64 {
    NOW_NS
}

/// Just enough msgpack encoding to build requests with exact control over each encoding.
mod mp {
    pub fn fixstr(s: &[u8]) -> Vec<u8> {
        assert!(s.len() < 32);
        let mut v = vec![0xa0 | s.len() as u8];
        v.extend_from_slice(s);
        v
    }
    pub fn str32(s: &[u8]) -> Vec<u8> {
        let mut v = vec![0xdb];
        v.extend_from_slice(&(s.len() as u32).to_be_bytes());
        v.extend_from_slice(s);
        v
    }
    pub fn bin(b: &[u8]) -> Vec<u8> {
        let mut v = vec![0xc6];
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
        v
    }
    pub fn event_time(seconds: u32, nanos: u32) -> Vec<u8> {
        let mut v = vec![0xd7, 0x00];
        v.extend_from_slice(&seconds.to_be_bytes());
        v.extend_from_slice(&nanos.to_be_bytes());
        v
    }
    pub fn array(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0xdc];
        v.extend_from_slice(&(items.len() as u16).to_be_bytes());
        items.iter().for_each(|i| v.extend_from_slice(i));
        v
    }
    pub fn fixarray(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0x90 | items.len() as u8];
        items.iter().for_each(|i| v.extend_from_slice(i));
        v
    }
    pub fn map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut v = vec![0x80 | pairs.len() as u8];
        pairs.iter().for_each(|(k, val)| {
            v.extend_from_slice(k);
            v.extend_from_slice(val);
        });
        v
    }
    pub fn map32(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut v = vec![0xdf];
        v.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
        pairs.iter().for_each(|(k, val)| {
            v.extend_from_slice(k);
            v.extend_from_slice(val);
        });
        v
    }
    pub fn record(log: &[u8]) -> Vec<u8> {
        map(&[
            (fixstr(b"log"), str32(log)),
            (fixstr(b"source"), fixstr(b"stdout")),
        ])
    }
}

fn decoder() -> Decoder {
    Decoder::with_clock(DecodeLimits::default(), fixed_clock)
}

fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let frame = decoder().decode(&mut buf);
    if let Ok(Some(_)) = frame {
        assert!(buf.is_empty(), "{} bytes left after one frame", buf.len());
    }
    frame
}

fn request(bytes: &[u8]) -> Request {
    match decode_one(bytes) {
        Ok(Some(Frame::Request(r))) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn malformed(bytes: &[u8]) -> String {
    match decode_one(bytes) {
        Err(DecodeError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn event(time_ns: u64, body: &[u8]) -> Event {
    Event {
        time_ns,
        body: Bytes::copy_from_slice(body),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn message_mode_four_elements_with_event_time_and_empty_option() {
    let record = mp::record(b"hello");
    let bytes = mp::fixarray(&[
        mp::fixstr(b"docker.web"),
        mp::event_time(1_700_000_000, 5),
        record.clone(),
        mp::map(&[]),
    ]);
    let req = request(&bytes);
    assert_eq!(req.mode, Mode::Message);
    assert_eq!(&req.batch.tag[..], b"docker.web");
    assert_eq!(
        req.batch.events,
        vec![event(1_700_000_000_000_000_005, &record)]
    );
    assert_eq!(
        (req.chunk, req.invalid_events, req.skipped_signal),
        (None, 0, None)
    );
}

#[test]
fn message_mode_three_elements_and_nil_option() {
    let record = mp::record(b"x");
    for bytes in [
        mp::fixarray(&[
            mp::fixstr(b"t"),
            vec![0xce, 0x65, 0x53, 0xf1, 0x00],
            record.clone(),
        ]),
        mp::fixarray(&[
            mp::fixstr(b"t"),
            vec![0xce, 0x65, 0x53, 0xf1, 0x00],
            record.clone(),
            vec![0xc0],
        ]),
    ] {
        let req = request(&bytes);
        assert_eq!(
            req.batch.events,
            vec![event(1_700_000_000 * 1_000_000_000, &record)]
        );
    }
}

#[test]
fn message_mode_bad_time_or_record_is_counted_not_fatal() {
    let chunk = mp::fixstr(b"abc");
    let option = mp::map(&[(mp::fixstr(b"chunk"), chunk.clone())]);
    for (time, record) in [
        (mp::event_time(1, 0), mp::fixstr(b"not a map")),
        (vec![0xff], mp::record(b"x")),
        (vec![0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], mp::record(b"x")),
    ] {
        let req = request(&mp::fixarray(&[
            mp::fixstr(b"t"),
            time,
            record,
            option.clone(),
        ]));
        assert!(req.batch.events.is_empty());
        assert_eq!(req.invalid_events, 1);
        assert_eq!(req.chunk.as_deref(), Some(&chunk[..]), "still acked");
    }
}

#[test]
fn time_zero_is_now_from_the_clock() {
    let record = mp::record(b"x");
    let req = request(&mp::fixarray(&[
        mp::fixstr(b"t"),
        vec![0x00],
        record.clone(),
    ]));
    assert_eq!(req.batch.events, vec![event(NOW_NS, &record)]);
    let req = request(&mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::event_time(0, 0),
        record.clone(),
    ]));
    assert_eq!(req.batch.events, vec![event(NOW_NS, &record)]);
}

#[test]
fn chunk_is_echoed_byte_for_byte_and_option_may_be_map32() {
    // Fluentd's chunk ends in "\n"; Fluent Bit writes the option header as map32 (reference §4).
    let chunk = mp::str32(b"q83vEjRWeJCrze8SNFZ4kA==\n");
    let option = mp::map32(&[
        (mp::fixstr(b"size"), vec![0x01]),
        (mp::fixstr(b"chunk"), chunk.clone()),
        (mp::fixstr(b"fluent_signal"), vec![0x00]),
        (mp::fixstr(b"eventEntryDataSize"), vec![0x05]),
        (vec![0x07], mp::fixstr(b"non-string key")),
    ]);
    let record = mp::record(b"x");
    let entries = mp::fixarray(&[mp::fixarray(&[mp::event_time(9, 9), record.clone()])]);
    let req = request(&mp::fixarray(&[mp::fixstr(b"t"), entries, option]));
    assert_eq!(req.chunk.as_deref(), Some(&chunk[..]));
    assert_eq!(
        ack_response(req.chunk.as_deref().unwrap())[..5],
        [0x81, 0xa3, b'a', b'c', b'k']
    );
    assert_eq!(&ack_response(&chunk)[5..], &chunk[..]);
    assert_eq!(req.batch.events, vec![event(9_000_000_009, &record)]);
}

#[test]
fn bad_options_are_malformed() {
    let entries = mp::fixarray(&[]);
    let reason = malformed(&mp::fixarray(&[
        mp::fixstr(b"t"),
        entries.clone(),
        mp::fixstr(b"gzip"),
    ]));
    assert!(reason.contains("option is a string"), "{reason}");
    let reason = malformed(&mp::fixarray(&[
        mp::fixstr(b"t"),
        entries.clone(),
        mp::map(&[(mp::fixstr(b"chunk"), vec![0x01])]),
    ]));
    assert!(reason.contains("chunk is an integer"), "{reason}");
    let reason = malformed(&mp::fixarray(&[
        mp::fixstr(b"t"),
        entries,
        mp::map(&[(mp::fixstr(b"fluent_signal"), mp::fixstr(b"1"))]),
    ]));
    assert!(reason.contains("fluent_signal"), "{reason}");
}

#[test]
fn bad_shapes_are_malformed_with_a_reason() {
    let record = mp::record(b"x");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (mp::map(&[]), "request is a map"),
        (vec![0x01], "request is an integer"),
        (b"{\"a\":1}".to_vec(), "JSON"),
        (mp::fixarray(&[mp::fixstr(b"t")]), "1 element"),
        (
            mp::fixarray(&[vec![0x01], mp::event_time(1, 0), record.clone()]),
            "tag is an integer",
        ),
        (
            mp::fixarray(&[mp::bin(b"t"), mp::event_time(1, 0), record.clone()]),
            "tag is a binary",
        ),
        (
            mp::fixarray(&[mp::fixstr(b"t"), vec![0xc0], record.clone()]),
            "second element is nil",
        ),
        (
            mp::fixarray(&[mp::fixstr(b"t"), mp::map(&[]), record.clone()]),
            "second element is a map",
        ),
        (
            mp::fixarray(&[mp::fixstr(b"t"), mp::event_time(1, 0)]),
            "no record",
        ),
        (
            mp::fixarray(&[mp::fixstr(b"t"), vec![0xc1], record.clone()]),
            "0xc1",
        ),
        (vec![0xc1], "0xc1"),
    ];
    for (bytes, expected) in cases {
        let reason = malformed(&bytes);
        assert!(
            reason.contains(expected),
            "{bytes:x?}: {reason:?} does not mention {expected:?}"
        );
    }
}

#[test]
fn forward_mode_entries_metadata_markers_and_invalid_entries() {
    let (r1, r2, r3) = (mp::record(b"one"), mp::record(b"two"), mp::record(b"three"));
    let meta = mp::map(&[(mp::fixstr(b"otel"), mp::fixstr(b"x"))]);
    let entries = mp::array(&[
        mp::fixarray(&[mp::event_time(10, 1), r1.clone()]),
        // Fluent Bit v2: [[EventTime, {metadata}], record]
        mp::fixarray(&[
            mp::fixarray(&[mp::event_time(11, 2), meta.clone()]),
            r2.clone(),
        ]),
        // group start / end markers: not events, not invalid
        mp::fixarray(&[
            mp::fixarray(&[mp::event_time(0xFFFF_FFFF, 0), meta.clone()]),
            mp::map(&[]),
        ]),
        mp::fixarray(&[
            mp::fixarray(&[mp::event_time(0xFFFF_FFFE, 0), meta]),
            mp::map(&[]),
        ]),
        // invalid: record not a map, entry not an array, 3-element entry, time a string
        mp::fixarray(&[mp::event_time(12, 0), mp::fixarray(&[])]),
        mp::fixstr(b"junk"),
        mp::fixarray(&[mp::event_time(12, 0), r3.clone(), r3.clone()]),
        mp::fixarray(&[mp::fixstr(b"12"), r3.clone()]),
        mp::fixarray(&[vec![0xd2, 0, 0, 0, 13], r3.clone()]),
    ]);
    let req = request(&mp::fixarray(&[mp::fixstr(b"fb"), entries]));
    assert_eq!(req.mode, Mode::Forward);
    assert_eq!(
        req.batch.events,
        vec![
            event(10_000_000_001, &r1),
            event(11_000_000_002, &r2),
            event(13_000_000_000, &r3)
        ]
    );
    assert_eq!(req.invalid_events, 4);
}

fn packed_blob(n: usize) -> (Vec<u8>, Vec<Event>) {
    let mut blob = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let record = mp::record(format!("line {i}").as_bytes());
        blob.extend(mp::fixarray(&[
            mp::event_time(100 + i as u32, 0),
            record.clone(),
        ]));
        expected.push(event((100 + i as u64) * 1_000_000_000, &record));
    }
    (blob, expected)
}

#[test]
fn packed_forward_as_bin_and_as_str32() {
    let (blob, expected) = packed_blob(3);
    let text = mp::map(&[
        (mp::fixstr(b"compressed"), mp::fixstr(b"text")),
        (mp::fixstr(b"size"), vec![0x03]),
    ]);
    for bytes in [
        mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&blob)]),
        mp::fixarray(&[mp::fixstr(b"t"), mp::str32(&blob), text]),
    ] {
        let req = request(&bytes);
        assert_eq!(req.mode, Mode::PackedForward);
        assert_eq!(req.batch.events, expected);
    }
}

#[test]
fn packed_forward_empty_blob_is_an_empty_request() {
    let req = request(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(b"")]));
    assert!(req.batch.events.is_empty());
}

#[test]
fn truncated_or_corrupt_packed_entries_are_malformed() {
    let (blob, _) = packed_blob(2);
    let reason = malformed(&mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::bin(&blob[..blob.len() - 1]),
    ]));
    assert!(reason.contains("truncated"), "{reason}");
    let mut bad = blob.clone();
    bad.push(0xc1);
    let reason = malformed(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&bad)]));
    assert!(reason.contains("0xc1"), "{reason}");
    let deep: Vec<u8> = [0x92, 0x01]
        .into_iter()
        .chain(std::iter::repeat_n(0x91, 200))
        .chain([0x80])
        .collect();
    let reason = malformed(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&deep)]));
    assert!(reason.contains("deeper"), "{reason}");
}

#[test]
fn compressed_packed_forward_gzip_multi_member_and_zstd() {
    let (blob, expected) = packed_blob(4);
    let half = mp::fixarray(&[mp::event_time(100, 0), mp::record(b"line 0")]).len() * 2;
    let mut members = gzip(&blob[..half]);
    members.extend(gzip(&blob[half..]));
    let gz = mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"gzip"))]);
    let req = request(&mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::bin(&members),
        gz.clone(),
    ]));
    assert_eq!(req.mode, Mode::CompressedPackedForward);
    assert_eq!(req.batch.events, expected);
    // Fluentd sends compressed payloads as str32 too.
    assert_eq!(
        request(&mp::fixarray(&[mp::fixstr(b"t"), mp::str32(&members), gz]))
            .batch
            .events,
        expected
    );

    let zstd = zstd::encode_all(&blob[..], 3).unwrap();
    let opt = mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"zstd"))]);
    assert_eq!(
        request(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&zstd), opt]))
            .batch
            .events,
        expected
    );
    // Magic bytes win over a missing or contradicting option.
    assert_eq!(
        request(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&zstd)]))
            .batch
            .events,
        expected
    );
    let text = mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"text"))]);
    assert_eq!(
        request(&mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&members), text]))
            .batch
            .events,
        expected
    );
}

#[test]
fn gzip_bomb_is_too_large() {
    let limits = DecodeLimits {
        max_request_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
    };
    let mut best = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    best.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = best.finish().unwrap();
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 16)
        .collect();
    let bytes = mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::bin(&bomb),
        mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"gzip"))]),
    ]);
    assert!(bytes.len() < 64 * 1024);
    let result = Decoder::with_clock(limits, fixed_clock).decode(&mut BytesMut::from(&bytes[..]));
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                limit: 1_048_576,
                what: SizeLimit::Decompressed
            })
        ),
        "{result:?}"
    );
}

#[test]
fn corrupt_gzip_is_malformed() {
    let mut gz = gzip(&packed_blob(2).0);
    let n = gz.len();
    gz[n / 2] ^= 0x55;
    gz[n - 5] ^= 0x55;
    let bytes = mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::bin(&gz),
        mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"gzip"))]),
    ]);
    assert!(malformed(&bytes).contains("gzip"));
}

#[test]
fn non_log_signals_are_skipped_and_acked() {
    let chunk = mp::fixstr(b"id");
    let option = mp::map32(&[
        (mp::fixstr(b"fluent_signal"), vec![0x01]),
        (mp::fixstr(b"chunk"), chunk.clone()),
    ]);
    // A cmetrics payload is not an entry stream; it must not be parsed as one.
    let req = request(&mp::fixarray(&[
        mp::fixstr(b"metrics"),
        mp::bin(&[0xc1, 0xde, 0xad]),
        option,
    ]));
    assert_eq!(req.skipped_signal, Some(1));
    assert!(req.batch.events.is_empty());
    assert_eq!(req.invalid_events, 0);
    assert_eq!(req.chunk.as_deref(), Some(&chunk[..]));
}

#[test]
fn invalid_utf8_everywhere_is_kept_as_bytes() {
    let bad = b"\xff\xfe\xc3\x28";
    let record = mp::map(&[
        (mp::fixstr(bad), mp::fixstr(bad)),
        (mp::str32(b"log"), mp::str32(bad)),
    ]);
    let entries = mp::bin(&mp::fixarray(&[mp::event_time(1, 0), record.clone()]));
    let option = mp::map(&[
        (mp::fixstr(bad), mp::fixstr(bad)),
        (mp::fixstr(b"chunk"), mp::fixstr(bad)),
    ]);
    let req = request(&mp::fixarray(&[mp::fixstr(bad), entries, option]));
    assert_eq!(&req.batch.tag[..], bad);
    assert_eq!(req.batch.events, vec![event(1_000_000_000, &record)]);
    assert_eq!(req.chunk.as_deref(), Some(&mp::fixstr(bad)[..]));
}

#[test]
fn nil_frames_and_several_frames_in_one_buffer() {
    let r = mp::record(b"x");
    let m = mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::event_time(1, 0),
        r.clone(),
        mp::map(&[]),
    ]);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0xc0]);
    buf.extend_from_slice(&m);
    buf.extend_from_slice(&m);
    buf.extend_from_slice(&[0xc0]);
    let mut d = decoder();
    assert!(matches!(d.decode(&mut buf), Ok(Some(Frame::Nil))));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Frame::Request(_)))));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Frame::Request(_)))));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Frame::Nil))));
    assert!(matches!(d.decode(&mut buf), Ok(None)));
    assert!(buf.is_empty());
}

/// Frames fed one byte at a time decode to the same requests as frames fed whole.
#[test]
fn byte_by_byte_feeding_matches_whole_feeding() {
    let (blob, _) = packed_blob(3);
    let mut stream = Vec::new();
    stream.extend(mp::fixarray(&[
        mp::fixstr(b"a"),
        mp::event_time(5, 6),
        mp::record(b"m"),
        mp::map(&[]),
    ]));
    stream.extend(mp::fixarray(&[
        mp::fixstr(b"b"),
        mp::array(&[mp::fixarray(&[vec![0x07], mp::record(b"f")])]),
    ]));
    stream.extend(mp::fixarray(&[
        mp::fixstr(b"c"),
        mp::str32(&blob),
        mp::map(&[(mp::fixstr(b"chunk"), mp::fixstr(b"k"))]),
    ]));
    stream.extend(mp::fixarray(&[
        mp::fixstr(b"d"),
        mp::bin(&gzip(&blob)),
        mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"gzip"))]),
    ]));

    let summarize = |frames: Vec<Frame>| -> Vec<(Bytes, Vec<Event>, Option<Bytes>)> {
        frames
            .into_iter()
            .map(|f| match f {
                Frame::Request(r) => (r.batch.tag, r.batch.events, r.chunk),
                Frame::Nil => panic!("no nil sent"),
            })
            .collect()
    };
    let mut whole = BytesMut::from(&stream[..]);
    let mut d = decoder();
    let mut frames = Vec::new();
    while let Some(f) = d.decode(&mut whole).unwrap() {
        frames.push(f);
    }
    let whole = summarize(frames);
    assert_eq!(whole.len(), 4);

    let mut d = decoder();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        while let Some(f) = d.decode(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(summarize(frames), whole);
    assert!(buf.is_empty());
}

#[test]
fn oversized_requests_are_too_large_before_they_complete() {
    let limits = DecodeLimits {
        max_request_bytes: 1000,
        max_decompressed_bytes: 1000,
    };
    // An incomplete Forward request that grows past the limit.
    let entry = mp::fixarray(&[mp::event_time(1, 0), mp::record(b"0123456789")]);
    let mut bytes = mp::fixarray(&[mp::fixstr(b"t")]);
    bytes[0] = 0x92;
    bytes.extend([0xdd, 0, 0, 1, 0]);
    let mut d = Decoder::with_clock(limits.clone(), fixed_clock);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut result = Ok(None);
    while buf.len() < 2000 && matches!(result, Ok(None)) {
        buf.extend_from_slice(&entry);
        result = d.decode(&mut buf);
    }
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                limit: 1000,
                what: SizeLimit::Request
            })
        ),
        "{result:?}"
    );
    assert!(buf.len() <= 1000 + entry.len());

    // A blob whose declared length is over the limit fails on its header.
    let mut d = Decoder::with_clock(limits, fixed_clock);
    let mut buf = BytesMut::from(&[0x92, 0xa1, b't', 0xc6, 0x00, 0x00, 0x10, 0x00][..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(DecodeError::TooLarge {
            limit: 1000,
            what: SizeLimit::Request
        })
    ));
}

#[test]
fn deep_nesting_in_a_record_is_malformed() {
    let mut record = vec![0x81, 0xa1, b'k'];
    record.extend(std::iter::repeat_n(0x91, 100_000));
    record.push(0x80);
    let reason = malformed(&mp::fixarray(&[
        mp::fixstr(b"t"),
        mp::event_time(1, 0),
        record,
    ]));
    assert!(reason.contains("deeper than 128"), "{reason}");
}

#[test]
fn bodies_are_zero_copy_slices_of_the_read_buffer() {
    let (blob, _) = packed_blob(2);
    let bytes = mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&blob)]);
    let mut buf = BytesMut::from(&bytes[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Some(Frame::Request(req)) = decoder().decode(&mut buf).unwrap() else {
        panic!()
    };
    for e in &req.batch.events {
        assert!(
            range.contains(&(e.body.as_ptr() as usize)),
            "body copied out of the read buffer"
        );
    }
    assert!(range.contains(&(req.batch.tag.as_ptr() as usize)));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20_000 {
        let len = rng.usize(0..64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let mut buf = BytesMut::from(&bytes[..]);
        let mut d = decoder();
        while let Ok(Some(_)) = d.decode(&mut buf) {}
    }
}

/// `[tag, bin([0,{}] × n)]`: the most events per wire byte a sender can pack.
fn tiny_entries(n: usize) -> Vec<u8> {
    let entries: Vec<u8> = std::iter::repeat_n([0x92u8, 0x00, 0x80], n)
        .flatten()
        .collect();
    let mut req = vec![0x92];
    req.extend(mp::fixstr(b"t"));
    req.extend(mp::bin(&entries));
    req
}

#[test]
fn decoded_requests_are_charged_at_their_real_size_and_refused_past_the_limit() {
    let n = 100_000; // 300 kB on the wire
    let wire = tiny_entries(n);
    let mut decoder = Decoder::with_clock(DecodeLimits::default(), fixed_clock);
    let mut buf = BytesMut::from(&wire[..]);
    let (len, bound) = decoder.next_held_bound(&buf).unwrap().unwrap();
    assert_eq!(len, wire.len());
    // Counted, not guessed: 100,000 events of 40 bytes, plus the request.
    assert_eq!(bound, wire.len() + (n + 1) * size_of::<Event>());
    let Some(Frame::Request(req)) = decoder.decode_within(&mut buf, bound).unwrap() else {
        panic!("a request");
    };
    assert_eq!(req.batch.len(), n);
    assert!(req.held_bytes <= bound, "{} > {bound}", req.held_bytes);
    assert!(
        req.held_bytes >= wire.len() + n * size_of::<Event>(),
        "amplification ~{}x counted",
        req.held_bytes / wire.len()
    );

    // The same request with room for half its events is refused before they are allocated.
    let mut buf = BytesMut::from(&wire[..]);
    let limit = wire.len() + n / 2 * size_of::<Event>();
    match decoder.decode_within(&mut buf, limit) {
        Err(DecodeError::TooLarge {
            limit: l,
            what: SizeLimit::Decoded,
        }) => assert_eq!(l, limit),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_compressed_request_is_charged_for_decompressing_then_at_its_exact_size() {
    let (blob, expected) = packed_blob(50);
    let gz = mp::map(&[(mp::fixstr(b"compressed"), mp::fixstr(b"gzip"))]);
    let wire = mp::fixarray(&[mp::fixstr(b"t"), mp::bin(&gzip(&blob)), gz]);
    let limits = DecodeLimits::default();
    let mut decoder = Decoder::with_clock(limits.clone(), fixed_clock);
    let mut buf = BytesMut::from(&wire[..]);
    // Before decompressing: the room decompressing may take, not the worst case of its events.
    let (len, bound) = decoder.next_held_bound(&buf).unwrap().unwrap();
    assert_eq!(len, wire.len());
    assert_eq!(bound, wire.len() + limits.max_decompressed_bytes);
    assert!(decoder.decompress_ready(&buf).unwrap());
    assert!(
        !decoder.decompress_ready(&buf).unwrap(),
        "decompressed once"
    );
    // Then: the request, the plain payload and its 50 events (counted, not guessed).
    let (_, exact) = decoder.next_held_bound(&buf).unwrap().unwrap();
    assert_eq!(
        exact,
        wire.len() + blob.len() + (expected.len() + 1) * size_of::<Event>()
    );
    let Some(Frame::Request(req)) = decoder.decode_within(&mut buf, exact).unwrap() else {
        panic!("a request");
    };
    assert_eq!(req.mode, Mode::CompressedPackedForward);
    assert_eq!(req.batch.events, expected);
    assert!(req.held_bytes <= exact, "{} > {exact}", req.held_bytes);
}

#[test]
fn entries_walked_by_the_count_decode_as_a_fresh_walk_does() {
    // More than 64 KiB (so `next_held_bound` counts the entries) and more entries than it
    // keeps the ends of (so decoding goes on by walking), in every shape an entry can take.
    let (r1, meta) = (
        mp::record(b"a longer line, so that the payload passes 64 KiB"),
        mp::map(&[(mp::fixstr(b"otel"), mp::fixstr(b"x"))]),
    );
    let shapes = [
        mp::fixarray(&[mp::event_time(10, 1), r1.clone()]),
        mp::fixarray(&[vec![0xce, 0, 0, 0, 11], r1.clone()]),
        mp::fixarray(&[
            mp::fixarray(&[mp::event_time(12, 2), meta.clone()]),
            r1.clone(),
        ]),
        mp::fixarray(&[
            mp::fixarray(&[mp::event_time(0xFFFF_FFFF, 0), meta]),
            mp::map(&[]),
        ]),
        mp::fixarray(&[mp::event_time(13, 0), mp::fixarray(&[])]),
        mp::fixstr(b"junk"),
        mp::fixarray(&[mp::event_time(14, 0), r1.clone(), r1.clone()]),
        mp::fixarray(&[mp::fixstr(b"15"), r1.clone()]),
    ];
    let entries: Vec<u8> = shapes
        .iter()
        .cycle()
        .take(6_000)
        .flatten()
        .copied()
        .collect();
    assert!(entries.len() > 64 * 1024);
    let mut wire = vec![0x92];
    wire.extend(mp::fixstr(b"t"));
    wire.extend(mp::bin(&entries));
    let fresh = request(&wire);
    let mut decoder = Decoder::with_clock(DecodeLimits::default(), fixed_clock);
    let mut buf = BytesMut::from(&wire[..]);
    let (_, bound) = decoder.next_held_bound(&buf).unwrap().unwrap();
    assert!(
        !decoder.scratch.entry_ends.is_empty(),
        "the count kept entry ends"
    );
    let Some(Frame::Request(counted)) = decoder.decode_within(&mut buf, bound).unwrap() else {
        panic!("a request");
    };
    assert!(decoder.scratch.entry_ends.is_empty(), "ends are used once");
    assert_eq!(counted.batch.events, fresh.batch.events);
    assert_eq!(counted.invalid_events, fresh.invalid_events);
    assert_eq!(fresh.batch.len(), 6_000 / 8 * 3);
    assert_eq!(fresh.invalid_events, 6_000 / 8 * 4);
}

#[test]
fn a_recycled_one_event_list_carries_the_next_message_mode_request() {
    let message =
        |log: &[u8]| mp::fixarray(&[mp::fixstr(b"t"), mp::event_time(10, 0), mp::record(log)]);
    let mut decoder = decoder();
    let mut buf = BytesMut::from(&[message(b"one"), message(b"two")].concat()[..]);
    let Some(Frame::Request(first)) = decoder.decode(&mut buf).unwrap() else {
        panic!("a request")
    };
    let mut events = first.batch.events;
    let taken = events.pop().unwrap();
    assert_eq!(taken, event(10_000_000_000, &mp::record(b"one")));
    let list = events.as_ptr();
    decoder.recycle(events);
    let Some(Frame::Request(second)) = decoder.decode(&mut buf).unwrap() else {
        panic!("a request")
    };
    assert_eq!(
        second.batch.events,
        [event(10_000_000_000, &mp::record(b"two"))]
    );
    assert_eq!(
        second.batch.events.as_ptr(),
        list,
        "the same list, not a new allocation"
    );
    // A list that still holds events, or a larger one, is not kept.
    decoder.recycle(vec![taken]);
    decoder.recycle(Vec::with_capacity(8));
    assert!(decoder.scratch.single.is_none());
}
