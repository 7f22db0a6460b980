// `my-output` in JavaScript: the output of examples/output-template, built with jco
// (componentize-js).
//
// - Each batch becomes one or more `POST`s of a JSON array of records to `url`, split so no
//   body passes `max_body_bytes`, gzipped by the router.
// - The secret `api_key` goes in the `Authorization` header as `Bearer …`: the router injects
//   it, the plugin never sees it.
// - Responses: 2xx delivered; 408, 429 and 5xx retried (honouring `Retry-After`); 413 split
//   and retried; other 4xx failed permanently.

import { unpack } from "./msgpack-lite.js";

const NAME = "my-output";
const VERSION = "0.1.0";
const DESCRIPTION = "Sends batches as JSON arrays to an HTTP endpoint.";
// The hosts and secrets the plugin asks for: the operator grants them with `allow_hosts` and
// `secrets = { api_key = … }`.
const HOSTS = ["https://logs.example.com"];
const SECRETS = ["api_key"];

// The config's JSON Schema: the router checks the operator's config against it before `init`,
// and `wasm-router plugin inspect` shows it.
const CONFIG_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  title: "Config",
  type: "object",
  properties: {
    url: {
      description: "Where to POST the events (a host the operator allows with `allow_hosts`).",
      type: "string",
    },
    max_body_bytes: {
      description: "The largest request body, in bytes, before compression.",
      type: "integer",
      minimum: 2,
      default: 1048576,
    },
  },
  required: ["url"],
  additionalProperties: false,
};

const utf8Encoder = new TextEncoder();
const lossyDecoder = new TextDecoder("utf-8");

// The operator's config, set by `init` (called on every new instance).
let url = "";
let maxBodyBytes = 1048576;
// The id of the next request; each response carries the id of its request back.
let nextId = 1;

/** `info`: what the plugin says about itself. */
export function info() {
  return {
    name: NAME,
    version: VERSION,
    kind: "output",
    description: DESCRIPTION,
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    requestedHosts: HOSTS,
    requestedSecrets: SECRETS,
  };
}

/** `init`: take the operator's config (JSON); throwing a list of config errors refuses it. */
export function init(config) {
  const parsed = JSON.parse(config);
  if (typeof parsed.url !== "string") {
    throw [{ path: "/url", message: "expected the URL to POST to" }];
  }
  url = parsed.url;
  maxBodyBytes = parsed.max_body_bytes ?? 1048576;
}

/** `encode`: the requests for one batch; throwing a string fails the batch. */
export function encode(batch) {
  const requests = [];
  let elements = [];
  let events = [];
  let size = 2; // `[` and `]`
  let start = 0;
  batch.bodyEnds.forEach((end, i) => {
    let record;
    try {
      record = unpack(batch.bodies.subarray(start, end));
    } catch (e) {
      throw `event ${i}: ${e}`;
    }
    start = end;
    const element = utf8Encoder.encode(JSON.stringify(toJson(record)));
    // A new body when this element would take the current one over max_body_bytes.
    if (events.length > 0 && size + 1 + element.length > maxBodyBytes) {
      requests.push(post(elements, events));
      elements = [];
      events = [];
      size = 2;
    }
    size += (events.length > 0 ? 1 : 0) + element.length;
    elements.push(element);
    events.push(i);
  });
  if (events.length > 0) requests.push(post(elements, events));
  return requests;
}

/** `onResponse`: what the router does after the answer to request `response.id`. */
export function onResponse(response) {
  if (response.transportError !== undefined || response.status === 0) {
    return { tag: "retry", val: undefined };
  }
  const status = response.status;
  if (status >= 200 && status <= 299) return { tag: "ok" };
  if (status === 413) return { tag: "split-and-retry" };
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) {
    return { tag: "retry", val: retryAfterMs(response.headers) };
  }
  const text = lossyDecoder.decode(response.body.subarray(0, 256));
  return { tag: "fail-permanent", val: `HTTP ${status}: ${text}` };
}

/** One request carrying `events` (their indexes in the batch): the JSON array of `elements`. */
function post(elements, events) {
  const body = new Uint8Array(elements.reduce((n, e) => n + e.length + 1, 1));
  let at = 0;
  body[at++] = 0x5b; // [
  elements.forEach((element, i) => {
    if (i > 0) body[at++] = 0x2c; // ,
    body.set(element, at);
    at += element.length;
  });
  body[at] = 0x5d; // ]
  const id = nextId;
  nextId = (nextId + 1) % 2 ** 32;
  return {
    id,
    method: "post",
    url,
    headers: [["content-type", "application/json"]],
    secretHeaders: [{ header: "authorization", secret: "api_key", prefix: "Bearer " }],
    body,
    compression: "gzip",
    events,
  };
}

/** `Retry-After` (in seconds) as milliseconds; an HTTP date is ignored. */
function retryAfterMs(headers) {
  const found = headers.find(([key]) => key.toLowerCase() === "retry-after");
  if (!found || !/^\s*\d+\s*$/.test(found[1])) return undefined;
  return Math.min(Number(found[1]) * 1000, 2 ** 32 - 1);
}

/** A decoded record as JSON can write it: maps as objects, bytes as (lossy) text, ext values
 * and BigInts beyond 2^53 as null and strings. */
function toJson(value) {
  if (value instanceof Map) {
    const object = {};
    for (const [key, item] of value) object[String(key)] = toJson(item);
    return object;
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Uint8Array) return lossyDecoder.decode(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "object" && value !== null) return null; // an ext value
  return value;
}
