// A small msgpack codec for event bodies (one msgpack map each), in plain JavaScript.
//
// Decodes maps to Map (keys keep their order, and need not be strings), arrays to Array,
// str to string, bin to Uint8Array, integers to number (BigInt beyond 2^53), floats to number,
// nil to null; an ext value (rare in log records) to Ext, written back as it came.

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** A msgpack ext value: its type code and raw bytes. */
export class Ext {
  constructor(code, data) {
    this.code = code;
    this.data = data;
  }
}

/** Decode one msgpack value that fills `bytes` (a Uint8Array) exactly. */
export function unpack(bytes) {
  const reader = { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), at: 0 };
  const value = decode(reader);
  if (reader.at !== bytes.length) {
    throw new Error(`${bytes.length - reader.at} bytes after the msgpack value`);
  }
  return value;
}

function take(r, n) {
  if (r.at + n > r.bytes.length) throw new Error("truncated msgpack value");
  const start = r.at;
  r.at += n;
  return start;
}

function uint(r, size) {
  const at = take(r, size);
  switch (size) {
    case 1: return r.view.getUint8(at);
    case 2: return r.view.getUint16(at);
    case 4: return r.view.getUint32(at);
    default: return small(r.view.getBigUint64(at));
  }
}

function int(r, size) {
  const at = take(r, size);
  switch (size) {
    case 1: return r.view.getInt8(at);
    case 2: return r.view.getInt16(at);
    case 4: return r.view.getInt32(at);
    default: return small(r.view.getBigInt64(at));
  }
}

/** A BigInt as a number when that is exact. */
function small(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function str(r, n) {
  const at = take(r, n);
  return utf8Decoder.decode(r.bytes.subarray(at, at + n));
}

function bin(r, n) {
  const at = take(r, n);
  return r.bytes.slice(at, at + n);
}

function ext(r, n) {
  const code = r.view.getInt8(take(r, 1));
  return new Ext(code, bin(r, n));
}

function map(r, n) {
  const out = new Map();
  for (let i = 0; i < n; i++) {
    const key = decode(r);
    out.set(key, decode(r));
  }
  return out;
}

function array(r, n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = decode(r);
  return out;
}

function decode(r) {
  const b = r.view.getUint8(take(r, 1));
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b >= 0xa0 && b <= 0xbf) return str(r, b & 0x1f);
  if (b >= 0x80 && b <= 0x8f) return map(r, b & 0x0f);
  if (b >= 0x90 && b <= 0x9f) return array(r, b & 0x0f);
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return bin(r, uint(r, 1));
    case 0xc5: return bin(r, uint(r, 2));
    case 0xc6: return bin(r, uint(r, 4));
    case 0xc7: return ext(r, uint(r, 1));
    case 0xc8: return ext(r, uint(r, 2));
    case 0xc9: return ext(r, uint(r, 4));
    case 0xca: return r.view.getFloat32(take(r, 4));
    case 0xcb: return r.view.getFloat64(take(r, 8));
    case 0xcc: return uint(r, 1);
    case 0xcd: return uint(r, 2);
    case 0xce: return uint(r, 4);
    case 0xcf: return uint(r, 8);
    case 0xd0: return int(r, 1);
    case 0xd1: return int(r, 2);
    case 0xd2: return int(r, 4);
    case 0xd3: return int(r, 8);
    case 0xd4: return ext(r, 1);
    case 0xd5: return ext(r, 2);
    case 0xd6: return ext(r, 4);
    case 0xd7: return ext(r, 8);
    case 0xd8: return ext(r, 16);
    case 0xd9: return str(r, uint(r, 1));
    case 0xda: return str(r, uint(r, 2));
    case 0xdb: return str(r, uint(r, 4));
    case 0xdc: return array(r, uint(r, 2));
    case 0xdd: return array(r, uint(r, 4));
    case 0xde: return map(r, uint(r, 2));
    case 0xdf: return map(r, uint(r, 4));
    default: throw new Error(`invalid msgpack marker 0x${b.toString(16)}`);
  }
}

/** Encode `value` (what `unpack` returns; plain objects too) as msgpack bytes (a Uint8Array). */
export function pack(value) {
  const out = [];
  encode(value, out);
  return Uint8Array.from(out);
}

function pushBytes(out, bytes) {
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
}

function pushUint(out, n, size) {
  for (let shift = (size - 1) * 8; shift >= 0; shift -= 8) out.push(Number((BigInt(n) >> BigInt(shift)) & 0xffn));
}

/** A length header: the fix form when `n <= fixMax`, else the 8/16/32-bit marker that fits. */
function head(out, n, fixBase, fixMax, markers) {
  if (fixBase !== null && n <= fixMax) {
    out.push(fixBase | n);
    return;
  }
  for (const [marker, size] of markers) {
    if (n < 2 ** (8 * size)) {
      out.push(marker);
      pushUint(out, n, size);
      return;
    }
  }
  throw new Error("msgpack value too long");
}

function encode(v, out) {
  if (v === null || v === undefined) {
    out.push(0xc0);
  } else if (v === true || v === false) {
    out.push(v ? 0xc3 : 0xc2);
  } else if (typeof v === "number" && Number.isInteger(v) && Number.isSafeInteger(v)) {
    if ((v >= 0 && v <= 0x7f) || (v < 0 && v >= -32)) out.push(v & 0xff);
    else if (v >= 0) { out.push(0xcf); pushUint(out, v, 8); }
    else { out.push(0xd3); pushUint(out, BigInt.asUintN(64, BigInt(v)), 8); }
  } else if (typeof v === "number") {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, v);
    out.push(0xcb);
    pushBytes(out, bytes);
  } else if (typeof v === "bigint") {
    out.push(v >= 0n ? 0xcf : 0xd3);
    pushUint(out, BigInt.asUintN(64, v), 8);
  } else if (typeof v === "string") {
    const bytes = utf8Encoder.encode(v);
    head(out, bytes.length, 0xa0, 31, [[0xd9, 1], [0xda, 2], [0xdb, 4]]);
    pushBytes(out, bytes);
  } else if (v instanceof Uint8Array) {
    head(out, v.length, null, 0, [[0xc4, 1], [0xc5, 2], [0xc6, 4]]);
    pushBytes(out, v);
  } else if (v instanceof Ext) {
    head(out, v.data.length, null, 0, [[0xc7, 1], [0xc8, 2], [0xc9, 4]]);
    out.push(v.code & 0xff);
    pushBytes(out, v.data);
  } else if (Array.isArray(v)) {
    head(out, v.length, 0x90, 15, [[0xdc, 2], [0xdd, 4]]);
    for (const item of v) encode(item, out);
  } else {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    head(out, entries.length, 0x80, 15, [[0xde, 2], [0xdf, 4]]);
    for (const [key, item] of entries) {
      encode(key, out);
      encode(item, out);
    }
  }
}
