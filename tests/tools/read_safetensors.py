#!/usr/bin/env python3
"""A strict, standalone safetensors reader (Python standard library only).

It stands in for the standard safetensors readers on machines without PyPI,
so it follows the file format's published rules, not difftron's writer:

  bytes 0..7     N, the header length, unsigned 64-bit little-endian
  bytes 8..8+N   a UTF-8 JSON object (it must start with '{'), optionally
                 followed by padding spaces (0x20) only
  the rest       the data buffer; every tensor's data_offsets [begin, end]
                 are relative to its first byte

Header entries: "__metadata__" (optional) maps strings to strings; every other
key is a tensor {"dtype", "shape", "data_offsets"} and nothing else. Keys are
unique. The tensors' byte ranges, taken in order of begin, tile the whole
buffer: the first starts at 0, each starts where the previous one ended, the
last ends at the end of the file. This reader accepts dtype F32 only.

usage:
  read_safetensors.py FILE                 validate; print metadata and tensors
  read_safetensors.py FILE --tensor NAME   validate; print NAME's values, one a line

As a module: read(path) returns (metadata, {name: (shape, array('f'))}).
Exit status 1 with one line "read_safetensors: FILE: what is wrong" when the
file breaks a rule.
"""
import json
import signal
import struct
import sys
from array import array

MAX_HEADER = 100_000_000  # the reference implementation refuses larger headers
DTYPE_BYTES = {"F32": 4}


class FormatError(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def _reject_constant(name):
    raise FormatError(f"non-standard JSON constant {name} in the header")


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def parse_header(blob):
    """Validates the length prefix and JSON header; returns (N, header dict)."""
    if len(blob) < 8:
        raise FormatError(f"{len(blob)} bytes: too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER:
        raise FormatError(f"header length {n} exceeds the {MAX_HEADER}-byte limit")
    if 8 + n > len(blob):
        raise FormatError(f"header length {n} runs past the end of the {len(blob)}-byte file")
    raw = blob[8:8 + n]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"header is not UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise FormatError("header does not start with '{'")
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    try:
        header, end = decoder.raw_decode(text)
    except json.JSONDecodeError as e:
        raise FormatError(f"header is not valid JSON ({e})") from None
    if text[end:].strip(" "):
        raise FormatError("header has bytes other than spaces after its JSON object")
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    return n, header


def check_entries(header, buffer_len):
    """Validates metadata and tensor entries; returns {name: (shape, begin, end)}."""
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FormatError("__metadata__ must map strings to strings")
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"tensor {name!r}: expected exactly the keys dtype, shape, data_offsets")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise FormatError(f"tensor {name!r}: dtype {dtype!r} not supported (this reader handles F32 only)")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise FormatError(f"tensor {name!r}: shape must be a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(_is_int(o) for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise FormatError(f"tensor {name!r}: data_offsets must be [begin, end] with 0 <= begin <= end")
        count = 1
        for d in shape:
            count *= d
        if offs[1] - offs[0] != count * DTYPE_BYTES[dtype]:
            raise FormatError(f"tensor {name!r}: data_offsets {offs} hold {offs[1] - offs[0]} bytes, "
                              f"shape {shape} of {dtype} needs {count * DTYPE_BYTES[dtype]}")
        if offs[1] > buffer_len:
            raise FormatError(f"tensor {name!r}: data_offsets {offs} run past the {buffer_len}-byte data buffer")
        tensors[name] = (shape, offs[0], offs[1])
    pos = 0
    for name, (_, begin, end) in sorted(tensors.items(), key=lambda kv: (kv[1][1], kv[1][2])):
        if begin != pos:
            what = "overlaps the previous tensor" if begin < pos else f"leaves a gap of {begin - pos} bytes"
            raise FormatError(f"tensor {name!r}: data starts at {begin}, expected {pos}: {what}")
        pos = end
    if pos != buffer_len:
        raise FormatError(f"tensors cover {pos} bytes of the {buffer_len}-byte data buffer")
    return meta, tensors


def read(path):
    """Reads and validates FILE; returns (metadata, {name: (shape, array('f'))}) in offset order."""
    with open(path, "rb") as f:
        blob = f.read()
    n, header = parse_header(blob)
    start = 8 + n
    meta, entries = check_entries(header, len(blob) - start)
    out = {}
    for name, (shape, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][1]):
        values = array("f")
        assert values.itemsize == 4
        values.frombytes(blob[start + begin:start + end])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (shape, values)
    return meta, out


def data_start(path):
    """Byte offset of the data buffer (8 + N)."""
    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--tensor") or argv[1] in ("-h", "--help"):
        print(__doc__.split("usage:")[1].split("As a module")[0].strip("\n"), file=sys.stderr)
        return 2
    path = argv[1]
    try:
        meta, tensors = read(path)
    except (OSError, FormatError) as e:
        print(f"read_safetensors: {path}: {e}", file=sys.stderr)
        return 1
    if len(argv) == 4:
        name = argv[3]
        if name not in tensors:
            print(f"read_safetensors: {path}: no tensor {name!r}", file=sys.stderr)
            return 1
        for v in tensors[name][1]:
            print(repr(v))
        return 0
    total = sum(len(v) for _, v in tensors.values())
    aligned = data_start(path) % 8 == 0
    print(f"{path}: valid safetensors, {len(tensors)} tensors, {total} values, "
          f"data 8-byte aligned: {'yes' if aligned else 'no'}")
    for k, v in meta.items():
        print(f"metadata {k}: {v}")
    for name, (shape, _) in tensors.items():
        print(f"tensor {name} F32 {shape}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... --tensor X | head` ends quietly
    sys.exit(main(sys.argv))
