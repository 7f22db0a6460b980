"""`my-output` in Python: the output of examples/output-template, built with componentize-py.

- Each batch becomes one or more `POST`s of a JSON array of records to `url`, split so no
  body passes `max_body_bytes`, gzipped by the router.
- The secret `api_key` goes in the `Authorization` header as `Bearer …`: the router injects
  it, the plugin never sees it.
- Responses: 2xx delivered; 408, 429 and 5xx retried (honouring `Retry-After`); 413 split and
  retried; other 4xx failed permanently.
"""

import json

import msgpack_lite
import wit_world
from componentize_py_types import Err
from wit_world.imports.http_types import (
    Compression,
    Delivery_FailPermanent,
    Delivery_Ok,
    Delivery_Retry,
    Delivery_SplitAndRetry,
    HttpRequest,
    Method,
    SecretHeader,
)
from wit_world.imports.types import ConfigError, PluginInfo, PluginKind

NAME = "my-output"
VERSION = "0.1.0"
DESCRIPTION = "Sends batches as JSON arrays to an HTTP endpoint."
# The hosts and secrets the plugin asks for: the operator grants them with `allow_hosts` and
# `secrets = { api_key = … }`.
HOSTS = ["https://logs.example.com"]
SECRETS = ["api_key"]

# The config's JSON Schema: the router checks the operator's config against it before `init`,
# and `wasm-router plugin inspect` shows it.
CONFIG_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Config",
    "type": "object",
    "properties": {
        "url": {
            "description": "Where to POST the events (a host the operator allows with `allow_hosts`).",
            "type": "string",
        },
        "max_body_bytes": {
            "description": "The largest request body, in bytes, before compression.",
            "type": "integer",
            "minimum": 2,
            "default": 1048576,
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}

# The operator's config, set by `init` (called on every new instance).
url = ""
max_body_bytes = 1048576
# The id of the next request; each response carries the id of its request back.
next_id = 1


class WitWorld(wit_world.WitWorld):
    def info(self) -> PluginInfo:
        return PluginInfo(
            name=NAME,
            version=VERSION,
            kind=PluginKind.OUTPUT,
            description=DESCRIPTION,
            config_schema=json.dumps(CONFIG_SCHEMA),
            requested_hosts=HOSTS,
            requested_secrets=SECRETS,
        )

    def init(self, config: str) -> None:
        global url, max_body_bytes
        parsed = json.loads(config)
        if not isinstance(parsed.get("url"), str):
            raise Err([ConfigError("/url", "expected the URL to POST to")])
        url = parsed["url"]
        max_body_bytes = parsed.get("max_body_bytes", 1048576)

    def encode(self, batch):
        requests = []
        body, events = bytearray(b"["), []
        start = 0
        for i, end in enumerate(batch.body_ends):
            try:
                record = msgpack_lite.unpack(batch.bodies[start:end])
            except Exception as e:  # the router fails the whole batch with this message
                raise Err(f"event {i}: {type(e).__name__}: {e}")
            start = end
            element = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=to_json)
            element = element.encode("utf-8")
            # A new body when this element would take the current one over max_body_bytes.
            if events and len(body) + 1 + len(element) + 1 > max_body_bytes:
                requests.append(post(body + b"]", events))
                body, events = bytearray(b"["), []
            if events:
                body += b","
            body += element
            events.append(i)
        if events:
            requests.append(post(body + b"]", events))
        return requests

    def on_response(self, response):
        if response.transport_error is not None or response.status == 0:
            return Delivery_Retry(None)
        status = response.status
        if 200 <= status <= 299:
            return Delivery_Ok()
        if status == 413:
            return Delivery_SplitAndRetry()
        if status in (408, 429) or 500 <= status <= 599:
            return Delivery_Retry(retry_after_ms(response.headers))
        text = response.body[:256].decode("utf-8", "replace")
        return Delivery_FailPermanent(f"HTTP {status}: {text}")


def post(body, events):
    """One request carrying `events` (their indexes in the batch) in `body`."""
    global next_id
    request_id, next_id = next_id, (next_id + 1) % (1 << 32)
    return HttpRequest(
        id=request_id,
        method=Method.POST,
        url=url,
        headers=[("content-type", "application/json")],
        secret_headers=[SecretHeader(header="authorization", secret="api_key", prefix="Bearer ")],
        body=bytes(body),
        compression=Compression.GZIP,
        events=events,
    )


def retry_after_ms(headers):
    """`Retry-After` (in seconds) as milliseconds; an HTTP date is ignored."""
    for key, value in headers:
        if key.lower() == "retry-after":
            try:
                return min(int(value.strip()) * 1000, (1 << 32) - 1)
            except ValueError:
                return None
    return None


def to_json(value):
    """What `json` cannot write: bytes as (lossy) text, ext values as null."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return None
