// `my-filter` in JavaScript: the same filter as examples/plugin-template, built with jco
// (componentize-js).
//
// - Drops events whose `log` contains one of `drop_if_contains` (default: `GET /health`).
// - Adds `level` (`info`, `warn`, …) when the `log` line starts with a level word and the record
//   has no `level` yet.
// - Keeps everything else untouched (nothing is copied back to the router).

import { counterAdd } from "wasm-router:plugin/metrics@0.1.0";
import { pack, unpack } from "./msgpack-lite.js";

const NAME = "my-filter";
const VERSION = "0.1.0";
const DESCRIPTION = "Drops health checks and adds a level field.";

// The config's JSON Schema: the router checks the operator's config against it before `init`,
// and `wasm-router plugin inspect` shows it.
const CONFIG_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  title: "Config",
  type: "object",
  properties: {
    drop_if_contains: {
      description: "Drop events whose `log` contains any of these texts.",
      type: "array",
      items: { type: "string" },
      default: ["GET /health"],
    },
  },
  additionalProperties: false,
};

const LEVELS = new Set(["trace", "debug", "info", "warn", "error"]);

const KEEP = { tag: "keep" };
const DROP = { tag: "drop" };

// The operator's config, set by `init` (called on every new instance).
let dropIfContains = ["GET /health"];

/** `info`: what the plugin says about itself. */
export function info() {
  return {
    name: NAME,
    version: VERSION,
    kind: "filter",
    description: DESCRIPTION,
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    requestedHosts: [],
    requestedSecrets: [],
  };
}

/** `init`: take the operator's config (JSON); throwing a list of config errors refuses it. */
export function init(config) {
  const texts = JSON.parse(config).drop_if_contains ?? ["GET /health"];
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
    throw [{ path: "/drop_if_contains", message: "expected a list of strings" }];
  }
  dropIfContains = texts;
  // stdout goes to the router's log (at `info`; stderr at `warn`), rate-limited.
  console.log(`my-filter: dropping events whose log contains ${JSON.stringify(texts)}`);
}

/** `process`: one outcome per event of the batch, in order. */
export function process(batch) {
  const outcomes = [];
  let dropped = 0;
  let start = 0;
  for (const end of batch.bodyEnds) {
    const body = batch.bodies.subarray(start, end);
    start = end;
    let outcome;
    try {
      outcome = filterEvent(unpack(body));
    } catch (e) {
      // A body this filter cannot read: the operator's `on_error` applies to this event.
      outcome = { tag: "error", val: String(e) };
    }
    if (outcome === DROP) dropped++;
    outcomes.push(outcome);
  }
  if (dropped > 0) counterAdd("dropped", BigInt(dropped), []);
  return outcomes;
}

/** The filter's logic for one record (a Map): an outcome. */
function filterEvent(record) {
  const log = record.get("log");
  if (typeof log !== "string") return KEEP;
  if (dropIfContains.some((text) => log.includes(text))) return DROP;
  const level = (log.trim().split(/\s+/, 1)[0] ?? "").toLowerCase();
  if (!LEVELS.has(level) || record.has("level")) return KEEP;
  record.set("level", level);
  return { tag: "replace", val: { tag: undefined, timeNs: undefined, body: pack(record) } };
}
