"""`my-filter` in Python: the same filter as examples/plugin-template, built with componentize-py.

- Drops events whose `log` contains one of `drop_if_contains` (default: `GET /health`).
- Adds `level` (`info`, `warn`, …) when the `log` line starts with a level word and the record
  has no `level` yet.
- Keeps everything else untouched (nothing is copied back to the router).
"""

import json

import msgpack_lite
import wit_world
from componentize_py_types import Err
from wit_world.imports import metrics
from wit_world.imports.types import (
    ConfigError,
    EventPatch,
    Outcome_Drop,
    Outcome_Error,
    Outcome_Keep,
    Outcome_Replace,
    PluginInfo,
    PluginKind,
)

NAME = "my-filter"
VERSION = "0.1.0"
DESCRIPTION = "Drops health checks and adds a level field."

# The config's JSON Schema: the router checks the operator's config against it before `init`,
# and `wasm-router plugin inspect` shows it.
CONFIG_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Config",
    "type": "object",
    "properties": {
        "drop_if_contains": {
            "description": "Drop events whose `log` contains any of these texts.",
            "type": "array",
            "items": {"type": "string"},
            "default": ["GET /health"],
        }
    },
    "additionalProperties": False,
}

LEVELS = {"trace", "debug", "info", "warn", "error"}

KEEP = Outcome_Keep()
DROP = Outcome_Drop()

# The operator's config, set by `init` (called on every new instance).
drop_if_contains = ["GET /health"]


class WitWorld(wit_world.WitWorld):
    def info(self) -> PluginInfo:
        return PluginInfo(
            name=NAME,
            version=VERSION,
            kind=PluginKind.FILTER,
            description=DESCRIPTION,
            config_schema=json.dumps(CONFIG_SCHEMA),
            requested_hosts=[],
            requested_secrets=[],
        )

    def init(self, config: str) -> None:
        global drop_if_contains
        parsed = json.loads(config)
        texts = parsed.get("drop_if_contains", ["GET /health"])
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise Err([ConfigError("/drop_if_contains", "expected a list of strings")])
        drop_if_contains = texts
        # stdout goes to the router's log (at `info`; stderr at `warn`), rate-limited.
        print(f"my-filter: dropping events whose log contains {json.dumps(texts)}")

    def process(self, batch):
        outcomes = []
        dropped = 0
        start = 0
        for end in batch.body_ends:
            body = batch.bodies[start:end]
            start = end
            try:
                outcome = filter_event(msgpack_lite.unpack(body))
            except Exception as e:  # a body this filter cannot read: `on_error` applies
                outcome = Outcome_Error(f"{type(e).__name__}: {e}")
            dropped += outcome is DROP
            outcomes.append(outcome)
        if dropped:
            metrics.counter_add("dropped", dropped, [])
        return outcomes


def filter_event(record):
    """The filter's logic for one record (a dict): an outcome."""
    log = record.get("log")
    if not isinstance(log, str):
        return KEEP
    if any(text in log for text in drop_if_contains):
        return DROP
    words = log.split(None, 1)
    level = words[0].lower() if words else ""
    if level not in LEVELS or "level" in record:
        return KEEP
    record["level"] = level
    return Outcome_Replace(EventPatch(tag=None, time_ns=None, body=msgpack_lite.pack(record)))
