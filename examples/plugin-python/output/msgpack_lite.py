"""A small msgpack codec for event bodies (one msgpack map each), in pure Python.

Decodes to dict / list / str / bytes / int / float / bool / None; an ext value (rare in log
records) decodes to `Ext` and is written back as it came. Keys keep their order.
"""

import struct


class Ext:
    """A msgpack ext value: its type code and raw bytes, kept as they came."""

    def __init__(self, code, data):
        self.code = code
        self.data = data

    def __eq__(self, other):
        return isinstance(other, Ext) and (self.code, self.data) == (other.code, other.data)


def unpack(data):
    """Decode one msgpack value that fills `data` exactly."""
    value, end = _decode(memoryview(data), 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the msgpack value")
    return value


_FIXED = {  # marker: (struct format, size)
    0xCA: (">f", 4), 0xCB: (">d", 8),
    0xCC: (">B", 1), 0xCD: (">H", 2), 0xCE: (">I", 4), 0xCF: (">Q", 8),
    0xD0: (">b", 1), 0xD1: (">h", 2), 0xD2: (">i", 4), 0xD3: (">q", 8),
}
_LENGTH = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4,
           0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4, 0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def _decode(buf, i):
    b = buf[i]
    i += 1
    if b <= 0x7F:
        return b, i
    if b >= 0xE0:
        return b - 0x100, i
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return str(buf[i:i + n], "utf-8"), i + n
    if 0x80 <= b <= 0x8F:
        return _map(buf, i, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return _array(buf, i, b & 0x0F)
    if b == 0xC0:
        return None, i
    if b == 0xC2:
        return False, i
    if b == 0xC3:
        return True, i
    if b in _FIXED:
        fmt, size = _FIXED[b]
        return struct.unpack_from(fmt, buf, i)[0], i + size
    if b in _LENGTH:
        size = _LENGTH[b]
        n = int.from_bytes(buf[i:i + size], "big")
        i += size
        if b in (0xD9, 0xDA, 0xDB):
            return str(buf[i:i + n], "utf-8"), i + n
        if b in (0xC4, 0xC5, 0xC6):
            return bytes(buf[i:i + n]), i + n
        if b in (0xDC, 0xDD):
            return _array(buf, i, n)
        if b in (0xDE, 0xDF):
            return _map(buf, i, n)
        return _ext(buf, i, n)
    if b in _FIXEXT:
        return _ext(buf, i, _FIXEXT[b])
    raise ValueError(f"invalid msgpack marker 0x{b:02x}")


def _ext(buf, i, n):
    code = buf[i] - 0x100 if buf[i] > 0x7F else buf[i]
    return Ext(code, bytes(buf[i + 1:i + 1 + n])), i + 1 + n


def _map(buf, i, n):
    out = {}
    for _ in range(n):
        key, i = _decode(buf, i)
        out[key], i = _decode(buf, i)
    return out, i


def _array(buf, i, n):
    out = []
    for _ in range(n):
        item, i = _decode(buf, i)
        out.append(item)
    return out, i


def pack(value):
    """Encode `value` (what `unpack` returns) as msgpack bytes."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _head(out, n, fix_base, fix_max, markers):
    """A length header: fix form when n <= fix_max, else the 8/16/32-bit marker that fits."""
    if fix_base is not None and n <= fix_max:
        out.append(fix_base | n)
        return
    for marker, size in markers:
        if n < 1 << (8 * size):
            out.append(marker)
            out += n.to_bytes(size, "big")
            return
    raise ValueError("msgpack value too long")


def _encode(v, out):
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v <= 0x7F or -32 <= v < 0:
            out.append(v & 0xFF)
        elif v >= 0:
            out += b"\xcf" + v.to_bytes(8, "big")
        else:
            out += b"\xd3" + v.to_bytes(8, "big", signed=True)
    elif isinstance(v, float):
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        data = v.encode("utf-8")
        _head(out, len(data), 0xA0, 31, [(0xD9, 1), (0xDA, 2), (0xDB, 4)])
        out += data
    elif isinstance(v, (bytes, bytearray)):
        _head(out, len(v), None, 0, [(0xC4, 1), (0xC5, 2), (0xC6, 4)])
        out += v
    elif isinstance(v, dict):
        _head(out, len(v), 0x80, 15, [(0xDE, 2), (0xDF, 4)])
        for key, item in v.items():
            _encode(key, out)
            _encode(item, out)
    elif isinstance(v, (list, tuple)):
        _head(out, len(v), 0x90, 15, [(0xDC, 2), (0xDD, 4)])
        for item in v:
            _encode(item, out)
    elif isinstance(v, Ext):
        _head(out, len(v.data), None, 0, [(0xC7, 1), (0xC8, 2), (0xC9, 4)])
        out.append(v.code & 0xFF)
        out += v.data
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as msgpack")
