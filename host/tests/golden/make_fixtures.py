"""Write the forward-protocol golden fixtures of host/tests/golden/ (see README.md there).

Each fixture is NAME.bin (the raw bytes a receiver reads from one connection) and
NAME.expected.json (what host/tests/forward_golden.rs must decode from them). Expectations
come from an independent reading of the bytes with PyPI `msgpack` (the `expect` function
below, written from the reference, not from the Rust decoder), or are written by hand for
bad input.

Two kinds of fixtures:
  * captured: the bytes real senders put on the wire, recorded by a small TCP server
    (Debian's fluent-logger-golang via testing/clients/go, PyPI fluent-logger via
    testing/clients/python, npm fluent-logger via testing/clients/node). Needs
    `eval "$(scripts/install-test-deps)"` first. Times come from --base-ns, so a re-capture
    gives the same bytes except for random chunk ids.
  * built: shapes of senders that cannot be installed here (Fluent Bit, Fluentd) and edge
    cases, built byte by byte as reference forward-protocol.md describes them.

Run from the repository root with the test venv:
    .test-deps/venv/bin/python host/tests/golden/make_fixtures.py [--built-only]
"""

import codecs
import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import threading

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
# The golden test decodes with a fixed clock: time 0 becomes this.
NOW_NS = 1_234_567_890_000_000_000
BASE_NS = 1_700_000_000_123_456_789
NANOS = 1_000_000_000

# ---------------------------------------------------------------------------------------------
# msgpack pieces with exact encodings (PyPI msgpack always picks the smallest form).


def p(value):
    return msgpack.packb(value, use_bin_type=True)


def rawstr(data):
    """A msgpack str holding `data` as-is (UTF-8 or not), smallest header."""
    n = len(data)
    if n < 32:
        return bytes([0xA0 | n]) + data
    if n < 256:
        return b"\xd9" + bytes([n]) + data
    if n < 65536:
        return b"\xda" + struct.pack(">H", n) + data
    return str32(data)


def str32(data):
    return b"\xdb" + struct.pack(">I", len(data)) + data


def bin32(data):
    return b"\xc6" + struct.pack(">I", len(data)) + data


def map32(pairs):
    return b"\xdf" + struct.pack(">I", len(pairs)) + b"".join(k + v for k, v in pairs)


def fixmap(pairs):
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def arr(items):
    return p_array_header(len(items)) + b"".join(items)


def p_array_header(n):
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def event_time(ns):
    return b"\xd7\x00" + struct.pack(">II", ns // NANOS, ns % NANOS)


def event_time_ext8(ns):
    return b"\xc7\x08\x00" + struct.pack(">II", ns // NANOS, ns % NANOS)


def entry(time, record):
    return arr([time, record])


# ---------------------------------------------------------------------------------------------
# The independent reading: what each frame should decode to (reference §2-§4).


class Invalid(Exception):
    pass


class Marker(Exception):
    pass


def lossy(b):
    return b.decode("utf-8", "replace")


# Each byte of invalid UTF-8 as the private-use code point U+E000 + the byte, as Fluent Bit
# (flb_utils_write_str) and the router's JSON (host/src/event/json.rs) write it.
codecs.register_error("fluent_bit_private_use", lambda e: ("".join(chr(0xE000 | b) for b in e.object[e.start:e.end]), e.end))


def mapped(b):
    return b.decode("utf-8", "fluent_bit_private_use")


def json_value(v):
    """A msgpack value as the router renders it in JSON (host/src/event/json.rs)."""
    if isinstance(v, (bytes, bytearray)):
        return mapped(bytes(v))
    if isinstance(v, dict):
        return {(mapped(k) if isinstance(k, bytes) else json.dumps(json_value(k))): json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_value(x) for x in v]
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if isinstance(v, msgpack.ExtType):
        if v.code == 0 and len(v.data) == 8:
            s, n = struct.unpack(">II", v.data)
            return s + n / NANOS
        return None
    return v


def time_ns(t):
    if isinstance(t, list):  # ExtType is a tuple: not this case
        if not t or isinstance(t[0], (list, dict)):
            raise Invalid()
        t = t[0]
    if isinstance(t, bool):
        raise Invalid()
    if isinstance(t, int):
        if t == 0:
            return NOW_NS
        if t < 0 or t * NANOS >= 2**64:
            raise Invalid()
        return t * NANOS
    if isinstance(t, msgpack.ExtType):
        if t.code != 0 or len(t.data) != 8:
            raise Invalid()
        s, n = struct.unpack(">II", t.data)
        if n == 0 and s in (0xFFFFFFFF, 0xFFFFFFFE):
            raise Marker()
        if s == 0 and n == 0:
            return NOW_NS
        if n >= NANOS:
            raise Invalid()
        return s * NANOS + n
    if isinstance(t, float):
        if t == 0.0:
            return NOW_NS
        if not (0 < t < 2**64 / NANOS):
            raise Invalid()
        whole = int(t)
        return whole * NANOS + min(round((t - whole) * NANOS), NANOS - 1)
    raise Invalid()


def unpacker(data):
    u = msgpack.Unpacker(raw=True, strict_map_key=False, use_list=True)
    u.feed(data)
    return u


def expect_entries(entries, out):
    for e in entries:
        try:
            if not isinstance(e, list) or len(e) != 2:
                raise Invalid()
            t = time_ns(e[0])
            if not isinstance(e[1], dict):
                raise Invalid()
            out["events"].append({"time_ns": t, "record": json_value(e[1])})
        except Invalid:
            out["invalid_events"] += 1
        except Marker:
            pass


def expect_frame(raw):
    """The expected decoding of one top-level object, given its exact bytes."""
    obj = msgpack.unpackb(raw, raw=True, strict_map_key=False)
    if obj is None:
        return {"nil": True}
    out = {"tag": lossy(obj[0]), "mode": None, "chunk_hex": None, "invalid_events": 0, "skipped_signal": None, "events": []}
    second = obj[1]
    if isinstance(second, (int, float, msgpack.ExtType)) and not isinstance(second, bool):
        out["mode"], option = "Message", (obj[3] if len(obj) > 3 else None)
    elif isinstance(second, list):
        out["mode"], option = "Forward", (obj[2] if len(obj) > 2 else None)
    else:
        out["mode"], option = "PackedForward", (obj[2] if len(obj) > 2 else None)
    option = option or {}
    if b"chunk" in option:
        # Every sender here writes the chunk with the smallest str header.
        out["chunk_hex"] = rawstr(option[b"chunk"]).hex()
    compressed = option.get(b"compressed")
    if out["mode"] == "PackedForward" and (compressed in (b"gzip", b"zstd") or second[:2] == b"\x1f\x8b" or second[:4] == b"\x28\xb5\x2f\xfd"):
        out["mode"] = "CompressedPackedForward"
    if option.get(b"fluent_signal", 0) != 0:
        out["skipped_signal"] = option[b"fluent_signal"]
        return out
    if out["mode"] == "Message":
        expect_entries([[obj[1], obj[2]]], out)
    elif out["mode"] == "Forward":
        expect_entries(second, out)
    else:
        payload = second
        if out["mode"] == "CompressedPackedForward":
            if payload[:2] == b"\x1f\x8b":
                payload = gzip.decompress(payload)  # every member
            else:
                import zstandard  # only needed for zstd fixtures

                payload = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        expect_entries(list(unpacker(payload)), out)
    return out


def split_frames(data):
    """The exact bytes of each complete top-level object, and what is left over."""
    frames, u = [], unpacker(data)
    pos = 0
    while True:
        try:
            u.unpack()
        except msgpack.OutOfData:
            break
        end = u.tell()
        frames.append(data[pos:end])
        pos = end
    return frames, data[pos:]


def write(name, data, source, frames=None, error=None, limits=None):
    if frames is None:
        complete, rest = split_frames(data)
        assert not rest or error, f"{name}: {len(rest)} bytes left over"
        frames = [expect_frame(f) for f in complete]
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(data)
    expected = {"source": source, "frames": frames, "error": error}
    if limits:
        expected["limits"] = limits
    with open(os.path.join(HERE, name + ".expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    events = sum(len(fr.get("events", [])) for fr in frames)
    print(f"{name}: {len(data)} bytes, {len(frames)} frame(s), {events} event(s)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Built fixtures: Fluent Bit, Fluentd and edge cases, byte by byte.

FB_RECORD = fixmap([(p("log"), p("fluent-bit line")), (p("kubernetes"), p({"pod": "web-1", "labels": {"app": "web"}})), (p("n"), p(7))])


def built():
    t0 = BASE_NS

    # Fluent Bit out_forward, v5.0.5+ defaults with send_options: Forward mode, map32 option
    # with size and fluent_signal 0, entries [[EventTime, {metadata}], record] (reference §3.3,
    # §4, §8.2), with OTel group start/end markers around the group (reference §3.2).
    meta = fixmap([(p("otlp"), fixmap([(p("trace_id"), p("abc"))]))])
    entries = [
        entry(arr([event_time(0xFFFFFFFF * NANOS), fixmap([])]), fixmap([(p("resource"), p({}))])),
        entry(arr([event_time(t0), meta]), FB_RECORD),
        entry(arr([event_time(t0 + 1), fixmap([])]), fixmap([(p("log"), p("second"))])),
        entry(arr([event_time(0xFFFFFFFE * NANOS), fixmap([])]), fixmap([])),
    ]
    option = map32([(p("size"), p(len(entries))), (p("fluent_signal"), p(0))])
    write(
        "fluentbit_forward_metadata",
        arr([p("fb.app"), arr(entries), option]),
        "Fluent Bit out_forward >= v5.0.5 (retain_metadata_in_forward_mode true) with send_options: "
        "Forward mode, map32 option {size, fluent_signal: 0}, [[EventTime, {meta}], record] entries, "
        "group start/end markers (EventTime seconds 0xFFFFFFFF / 0xFFFFFFFE) that are not events. Built per reference §3.2, §3.3, §4, §8.2.",
    )

    # Fluent Bit before v5.0.4, defaults: Forward mode, no option at all, EventTime entries.
    write(
        "fluentbit_forward_plain",
        arr([p("fb.app"), arr([entry(event_time(t0 + i * 1_000_003), FB_RECORD) for i in range(3)])]),
        "Fluent Bit out_forward defaults before v5.0.4: Forward mode, 2-element request (no option), EventTime entries. Built per reference §2.2, §8.2.",
    )

    # Fluent Bit with require_ack_response: chunk = base64(SHA-512(payload)[0..16]), map32 option.
    write(
        "fluentbit_forward_ack",
        arr([p("fb.app"), arr([entry(event_time(t0), FB_RECORD)]), map32([(p("chunk"), p("0q2Hn8m7l9ZQ+Yx3f1b2Ww==")), (p("size"), p(1)), (p("fluent_signal"), p(0))])]),
        "Fluent Bit out_forward with require_ack_response: map32 option {chunk, size, fluent_signal: 0}. Built per reference §4, §5, §8.2.",
    )

    # Fluent Bit compress gzip: CompressedPackedForward as bin.
    payload = b"".join(entry(event_time(t0 + i), FB_RECORD) for i in range(3))
    write(
        "fluentbit_compressed_gzip",
        arr([p("fb.app"), bin32(gzip.compress(payload)), map32([(p("size"), p(3)), (p("compressed"), p("gzip")), (p("fluent_signal"), p(0))])]),
        "Fluent Bit out_forward compress gzip: bin(gzip(entries)), map32 option {size, compressed: gzip, fluent_signal: 0}. Built per reference §2.4, §8.2.",
    )

    # Fluent Bit metrics: fluent_signal 1, a cmetrics payload that is not an entry stream.
    cmetrics = p({"meta": {"cmetrics": {"processing": {"static_labels": []}}}, "metrics": [{"meta": {"type": 0}, "values": [{"value": 1.5}]}]})
    write(
        "fluentbit_metrics_signal",
        arr([p("fb.metrics"), bin32(cmetrics), map32([(p("chunk"), p("bWV0cmljcy1jaHVuay1pZA==")), (p("fluent_signal"), p(1))])]),
        "Fluent Bit out_forward sending metrics: bin payload of cmetrics msgpack with fluent_signal 1. Skipped (not logs), still acked. Built per reference §4, §8.2.",
    )

    # Fluent Bit with a record-accessor tag: Message mode, 4 elements, map32 option with metadata.
    write(
        "fluentbit_message_dynamic_tag",
        arr([p("web-1"), event_time(t0), FB_RECORD, map32([(p("fluent_signal"), p(0)), (p("metadata"), fixmap([(p("k"), p("v"))]))])]),
        "Fluent Bit out_forward with a dynamic tag ($key): Message mode, map32 option {fluent_signal: 0, metadata}. Built per reference §4, §8.2.",
    )

    # Fluentd out_forward: PackedForward as str32 (even small), compressed "text", chunk ending in "\n".
    fd_record = p({"message": "fluentd line", "host": "agg-1"})
    payload = b"".join(entry(event_time(t0 + i), fd_record) for i in range(2))
    write(
        "fluentd_packed_text_str32",
        arr([p("fd.app"), str32(payload), fixmap([(p("size"), p(2)), (p("compressed"), p("text")), (p("chunk"), p("q83vEjRWeJCrze8SNFZ4kA==\n"))])]),
        'Fluentd out_forward (require_ack_response): PackedForward as str32 with binary (non-UTF-8) content, option {size, compressed: "text", chunk: base64 + "\\n"}. Built per reference §2.3, §4, §8.3.',
    )

    # Fluentd compress gzip: its buffer appends one gzip member per write: multi-member, as str32.
    members = b"".join(gzip.compress(entry(event_time(t0 + i), fd_record)) for i in range(3))
    write(
        "fluentd_compressed_gzip_multi_member",
        arr([p("fd.app"), str32(members), fixmap([(p("size"), p(3)), (p("compressed"), p("gzip"))])]),
        "Fluentd out_forward compress gzip: str32 holding three gzip members back to back (one per buffered write). Built per reference §2.4, §8.3.",
    )

    # Integer times in every width and signedness (Go sends d2, Python/Node ce), and 0 = now.
    widths = [p(5), b"\xcc\x05", b"\xcd\x01\x00", b"\xce" + struct.pack(">I", 1_700_000_000), b"\xcf" + struct.pack(">Q", 1_700_000_001),
              b"\xd0\x05", b"\xd1\x01\x00", b"\xd2" + struct.pack(">i", 1_700_000_002), b"\xd3" + struct.pack(">q", 1_700_000_003), p(0)]
    write(
        "time_integer_widths",
        arr([p("times"), arr([entry(t, fixmap([(p("i"), p(i))])) for i, t in enumerate(widths)])]),
        "Integer seconds in every msgpack width: fixint, u8, u16, u32 (ce: Python, Node), u64, i8, i16, i32 (d2: Go msgp), i64; and 0, which means now. Built per reference §3.1, §3.3.",
    )

    # EventTime as ext8 length 8 (not fixext8) and float seconds.
    write(
        "time_ext8_and_float",
        arr([p("times"), arr([
            entry(event_time_ext8(t0), fixmap([(p("form"), p("ext8"))])),
            entry(b"\xcb" + struct.pack(">d", 1_700_000_000.25), fixmap([(p("form"), p("float64"))])),
            entry(b"\xca" + struct.pack(">f", 1_048_576.5), fixmap([(p("form"), p("float32"))])),
            entry(event_time(t0), fixmap([(p("form"), p("fixext8"))])),
        ])]),
        "EventTime as ext8 with length 8 (c7 08 00), float64 and float32 seconds (Fluent Bit's decoder accepts floats), and fixext8. Built per reference §3.2, §3.3.",
    )
    write(
        "time_float_message",
        arr([p("float"), b"\xcb" + struct.pack(">d", 1_700_000_000.5), fixmap([(p("log"), p("float time"))])]),
        "Message mode with a float64 time: accepted leniently. Built per reference §3.3.",
    )

    # Entries the receiver skips and counts, while the request still succeeds.
    write(
        "invalid_entries",
        arr([p("mixed"), arr([
            entry(event_time(t0), fixmap([(p("ok"), p(1))])),
            entry(event_time(t0), p("record is a string")),
            entry(p("time is a string"), fixmap([])),
            entry(b"\xd7\x01" + struct.pack(">II", 1, 0), fixmap([])),
            entry(event_time(t0)[:2] + struct.pack(">II", 1, NANOS), fixmap([])),
            entry(p(-5), fixmap([])),
            arr([event_time(t0), fixmap([]), fixmap([])]),
            p(42),
            entry(event_time(t0 + 1), fixmap([(p("ok"), p(2))])),
        ])]),
        "Forward entries that are skipped and counted as invalid (record not a map, time a string, ext type 1, nanoseconds >= 1e9, negative time, "
        "3-element entry, entry not an array) between two valid ones. Reference §9.2 (Fluentd skip_invalid_event).",
    )

    # Strings are bytes: invalid UTF-8 in the tag, keys, values, chunk.
    bad = b"\xff\xfe\xc3\x28"
    write(
        "invalid_utf8_everywhere",
        arr([rawstr(bad), event_time(t0), fixmap([(rawstr(bad), rawstr(bad)), (p("log"), rawstr(b"caf\xe9 \xff\xc3\xa9"))]), fixmap([(p("chunk"), rawstr(bad))])]),
        "Invalid UTF-8 inside msgpack str in the tag, a key, values and the chunk (Docker passes log bytes as-is). Reference §8.1, §10.5.",
    )

    # Several requests on one connection, with a nil heartbeat between them.
    write(
        "stream_mixed_with_nil",
        arr([p("a"), p(1_700_000_000), fixmap([(p("n"), p(1))])]) + p(None)
        + arr([p("b"), arr([entry(event_time(t0), fixmap([(p("n"), p(2))]))])])
        + arr([p("c"), bin32(entry(event_time(t0), fixmap([(p("n"), p(3))])))]),
        "Message, nil (heartbeat per the spec), Forward and PackedForward requests back to back on one connection. Reference §1.",
    )

    # Bad input: the connection is closed with a reason (reference §9).
    good = arr([p("ok"), event_time(t0), fixmap([(p("n"), p(1))]), fixmap([])])
    malformed = [
        ("bad_top_level_map", p({"tag": "x"}), "request is a map"),
        ("bad_json_variant", b'["tag",1700000000,{"log":"x"}]', "JSON"),
        ("bad_short_array", arr([p("only-tag")]), "1 element"),
        ("bad_tag_not_string", arr([p(12), event_time(t0), fixmap([])]), "tag is an integer"),
        ("bad_second_element_nil", arr([p("t"), p(None), fixmap([])]), "second element is nil"),
        ("bad_option_not_map", arr([p("t"), arr([]), p("gzip")]), "option is a string"),
        ("bad_chunk_not_string", arr([p("t"), arr([]), fixmap([(p("chunk"), p(123))])]), "chunk is an integer"),
        ("bad_reserved_marker", arr([p("t"), event_time(t0), b"\x81\xa1k\xc1"]), "0xc1"),
        ("bad_packed_truncated_entry", arr([p("t"), bin32(entry(event_time(t0), fixmap([(p("k"), p("v"))]))[:-1])]), "truncated"),
        ("bad_deep_nesting", arr([p("t"), event_time(t0), b"\x81\xa1k" + b"\x91" * 1000 + b"\x80"]), "deeper than 128"),
        ("bad_gzip_corrupt", arr([p("t"), bin32(b"\x1f\x8b\x08\x00garbage-not-deflate"), fixmap([(p("compressed"), p("gzip"))])]), "gzip"),
    ]
    for name, frame, reason in malformed:
        data = good + frame
        write(name, data, f"A valid request, then bad input: {reason}. Reference §9.", frames=[expect_frame(good)], error={"kind": "malformed", "contains": reason})

    big = arr([p("t"), bin32(b"\x00" * 5_000)])
    write("bad_over_limit", good + big, "A valid request, then a 5 kB request against a 4 KiB limit (Fluent Bit buffer_max_size). Reference §9.1.",
          frames=[expect_frame(good)], error={"kind": "too_large", "contains": "4096"}, limits={"max_request_bytes": 4096, "max_decompressed_bytes": 4096})


# ---------------------------------------------------------------------------------------------
# Captured fixtures: real senders against a recording server.


class Recorder:
    """Accepts one connection, records every byte, and acks requests that carry a chunk."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.data = bytearray()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, _ = self.sock.accept()
        u = msgpack.Unpacker(raw=True, strict_map_key=False)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            self.data += chunk
            u.feed(chunk)
            for obj in u:
                if isinstance(obj, list) and obj and isinstance(obj[-1], dict) and b"chunk" in obj[-1]:
                    conn.sendall(b"\x81\xa3ack" + p(obj[-1][b"chunk"].decode()))
        conn.close()

    def finish(self):
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the sender never closed its connection"
        self.sock.close()
        return bytes(self.data)


def capture(name, source, argv):
    rec = Recorder()
    argv = [a.replace("{address}", rec.address) for a in argv]
    subprocess.run(argv, check=True, timeout=60, stdout=subprocess.DEVNULL)
    write(name, rec.finish(), source)


def captured():
    go = os.path.join(ROOT, ".test-deps/bin/fluent-go-sender")
    py = os.path.join(ROOT, ".test-deps/venv/bin/python")
    send_py = os.path.join(ROOT, "testing/clients/python/send.py")
    node_dir = os.path.join(ROOT, "testing/clients/node")
    go_args = ["-network", "tcp", "-address", "{address}", "-tag", "docker.web", "-base-ns", str(BASE_NS)]
    capture("docker_go_message_eventtime", "Captured: Debian fluent-logger-golang 1.9.0 (the library in Docker's fluentd driver) with SubSecondPrecision, as FireLens "
            "configures it: Message mode, 4 elements, fixext8 EventTime, {} option. 14 events: #7 has a 16 KiB log line (Docker's largest fragment), #13 has invalid UTF-8. "
            "Sender: testing/clients/go. Reference §8.1.", [go, *go_args, "-count", "14", "-subsecond"])
    capture("docker_go_message_int32", "Captured: Debian fluent-logger-golang 1.9.0 without sub-second precision: integer seconds as int32 (d2). "
            "Sender: testing/clients/go. Reference §3.1, §8.1.", [go, *go_args, "-count", "3"])
    capture("docker_go_message_ack", "Captured: Debian fluent-logger-golang 1.9.0 with RequestAck: option {chunk: base64(16 bytes)}; the recorder acked each. "
            "Sender: testing/clients/go. Reference §5, §8.1.", [go, *go_args, "-count", "2", "-subsecond", "-ack"])
    py_args = [py, send_py, "--address", "{address}", "--tag", "py.app", "--count", "3", "--base-ns", str(BASE_NS)]
    capture("python_message_uint32", "Captured: PyPI fluent-logger 0.11.1: Message mode, 3 elements, integer seconds as uint32 (ce); records hold bin values "
            "(invalid UTF-8) and nested maps. Sender: testing/clients/python. Reference §8.4.", [*py_args, "--time", "int"])
    capture("python_message_eventtime", "Captured: PyPI fluent-logger 0.11.1 with nanosecond_precision: Message mode, 3 elements, fixext8 EventTime. "
            "Sender: testing/clients/python. Reference §8.4.", [*py_args, "--time", "eventtime"])
    node = ["node", os.path.join(node_dir, "send.js"), "--address", "{address}", "--tag", "node.app", "--count", "3", "--base-ns", str(BASE_NS)]
    capture("node_packed_forward_bin", "Captured: npm fluent-logger 3.4.1 eventMode PackedForward: bin payload, option {chunk, size (byte length), "
            'compressed: "text", eventEntryDataSize}. Sender: testing/clients/node. Reference §4, §8.5.', [*node, "--mode", "PackedForward", "--time", "int"])
    capture("node_compressed_packed_forward_gzip", "Captured: npm fluent-logger 3.4.1 eventMode CompressedPackedForward: bin(gzip(entries)), option "
            '{chunk, size, compressed: "gzip", eventEntryDataSize}, EventTime (ms precision). Sender: testing/clients/node. Reference §2.4, §8.5.',
            [*node, "--mode", "CompressedPackedForward", "--time", "eventtime"])
    capture("node_message_ack", "Captured: npm fluent-logger 3.4.1 Message mode with requireAckResponse: 4 elements, option {chunk}; the recorder acked "
            "each. Sender: testing/clients/node. Reference §5, §8.5.", [*node, "--mode", "Message", "--time", "int", "--ack"])


if __name__ == "__main__":
    built()
    if "--built-only" not in sys.argv:
        captured()
