"""Send numbered events to a forward-protocol receiver with PyPI `fluent-logger`.

Used by host/tests/forward_clients.rs. Event i (0-based) is, in Message mode
`[tag, time, record]`:

    time   --time int:       integer seconds  base_s + i
           --time eventtime: EventTime of     base_ns + i * 1_000_003 ns
    record {"seq": i, "msg": "python event <i>", "level": "info",
            "raw": b"\\xff\\xfebin <i>"  (bytes: msgpack bin, not valid UTF-8),
            "nested": {"a": [1, 2.5, True, None], "n": -i}}

where base_ns = --base-ns and base_s = base_ns // 10**9. Exits 1 if the library
reports any error.
"""

import argparse
import sys

from fluent import sender

EVENT_TIME_STEP_NS = 1_000_003


def record(i):
    return {
        "seq": i,
        "msg": f"python event {i}",
        "level": "info",
        "raw": b"\xff\xfe" + f"bin {i}".encode(),
        "nested": {"a": [1, 2.5, True, None], "n": -i},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True, help="host:port or unix:///path")
    p.add_argument("--tag", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--time", choices=["int", "eventtime"], required=True)
    p.add_argument("--base-ns", type=int, required=True)
    args = p.parse_args()

    if args.address.startswith("unix://"):
        host, port = args.address, 0
    else:
        host, _, port = args.address.rpartition(":")
        port = int(port)
    nanos = args.time == "eventtime"
    logger = sender.FluentSender(args.tag, host=host, port=port, nanosecond_precision=nanos, timeout=10.0)
    failed = 0
    for i in range(args.count):
        if nanos:
            ts = sender.EventTime.from_unix_nano(args.base_ns + i * EVENT_TIME_STEP_NS)
        else:
            ts = args.base_ns // 10**9 + i
        if not logger.emit_with_time(None, ts, record(i)):
            failed += 1
            print(f"event {i}: {logger.last_error!r}", file=sys.stderr)
            logger.clear_last_error()
    logger.close()
    if failed:
        print(f"{failed} of {args.count} events failed", file=sys.stderr)
        sys.exit(1)
    print(f"sent {args.count} events", file=sys.stderr)


if __name__ == "__main__":
    main()
