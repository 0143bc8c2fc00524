"""The narrow channel between a benchmark's tests and the candidate program: plain data only.

The tests (``check(candidate)``) run in a trusted process; the candidate's functions run in the
sandbox. A call crosses as ``(name, args, kwargs)`` and comes back as a value, and both directions
carry only numbers (int, float, complex), str, bytes, list, tuple, dict, set, frozenset, None and
bool. The decoder is strict: it builds fresh objects of exactly those types from a tagged JSON
text (the C parser of :mod:`json`, no object hooks, no pickle), within a size and a depth limit;
anything else is a :class:`ChannelError` with its reason. So nothing the candidate sends can run
code in the test's process: an object whose ``__eq__`` is always true does not cross, and the
builtins the test uses are its own.

Standard library only: the sandbox server loads this file by path (no site-packages there).

Encoding (JSON): str, int, float (also NaN, +-Infinity), bool and None as themselves; containers as
arrays whose first item is a tag: ``["l", ...]`` list, ``["t", ...]`` tuple, ``["s", ...]`` set,
``["f", ...]`` frozenset, ``["d", k1, v1, k2, v2, ...]`` dict, ``["b", "<base64>"]`` bytes,
``["c", re, im]`` complex, ``["x", "<hex>"]`` an int too long for decimal JSON.
"""

from __future__ import annotations

import base64
import json
import os
import select
import struct
import time

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
_BIG = 10**4000  # ints beyond this cross in hex (decimal conversion is quadratic); computed once
_HEAD = struct.Struct(">I")


class ChannelError(Exception):
    """A value that may not cross, or a frame that breaks the rules (too big, too deep, malformed)."""


class ChannelClosed(ChannelError):
    """The other side went away (the program exited or was killed)."""


# ---------------------------------------------------------------------- values <-> JSON


def to_wire(value, *, lenient: bool = False, max_depth: int = MAX_DEPTH):
    """The JSON-able form of ``value``. Strict (the tests' side): exact plain types only. Lenient
    (the candidate's side, which may send what it likes anyway): subclasses of plain types are sent
    as their base type (a namedtuple as a tuple, a Counter as a dict)."""

    def wire(x, depth):
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x if -_BIG < x < _BIG else ["x", format(x, "x")]
        if t is float:
            return x
        if depth >= max_depth:
            raise ChannelError(f"nested deeper than {max_depth}")
        if t is list:
            return ["l", *(wire(i, depth + 1) for i in x)]
        if t is tuple:
            return ["t", *(wire(i, depth + 1) for i in x)]
        if t is dict:
            out = ["d"]
            for k, v in x.items():
                out += (wire(k, depth + 1), wire(v, depth + 1))
            return out
        if t is set or t is frozenset:
            return ["s" if t is set else "f", *(wire(i, depth + 1) for i in x)]
        if t is bytes:
            return ["b", base64.b64encode(x).decode("ascii")]
        if t is complex:
            return ["c", x.real, x.imag]
        if lenient:
            for base in (bool, int, float, complex, str, bytes, tuple, list, dict, frozenset, set):
                if isinstance(x, base):
                    return wire(base(x), depth)
            if isinstance(x, bytearray | memoryview):
                return wire(bytes(x), depth)
        raise ChannelError(f"a {t.__name__} cannot cross the channel (plain data only)")

    return wire(value, 0)


def from_wire(obj, *, max_depth: int = MAX_DEPTH):
    """Fresh plain objects from the JSON-able form; :class:`ChannelError` on anything else."""

    def build(x, depth):
        t = type(x)
        if x is None or t is bool or t is str or t is int or t is float:
            return x
        if t is not list or not x or type(x[0]) is not str:
            raise ChannelError("malformed value")
        if depth >= max_depth:
            raise ChannelError(f"nested deeper than {max_depth}")
        tag, items = x[0], x[1:]
        if tag == "l":
            return [build(i, depth + 1) for i in items]
        if tag == "t":
            return tuple(build(i, depth + 1) for i in items)
        try:
            if tag == "s" or tag == "f":
                built = (build(i, depth + 1) for i in items)
                return set(built) if tag == "s" else frozenset(built)
            if tag == "d":
                if len(items) % 2:
                    raise ChannelError("malformed dict")
                it = iter(items)
                return {build(k, depth + 1): build(v, depth + 1) for k, v in zip(it, it, strict=True)}
        except TypeError as exc:  # an unhashable key or member (a list in a set)
            raise ChannelError(f"malformed value: {exc}") from None
        if tag == "b" and len(items) == 1 and type(items[0]) is str:
            try:
                return base64.b64decode(items[0], validate=True)
            except ValueError:
                raise ChannelError("malformed bytes") from None
        if tag == "c" and len(items) == 2 and all(type(i) in (int, float) for i in items):
            return complex(items[0], items[1])
        if tag == "x" and len(items) == 1 and type(items[0]) is str and len(items[0]) < MAX_BYTES:
            try:
                return int(items[0], 16)
            except ValueError:
                raise ChannelError("malformed int") from None
        raise ChannelError(f"unknown tag {tag[:20]!r}")

    return build(obj, 0)


def _no_objects(pairs):
    raise ChannelError("malformed value: JSON objects are not used")


def encode(message, *, lenient: bool = False, max_depth: int = MAX_DEPTH) -> bytes:
    return json.dumps(to_wire(message, lenient=lenient, max_depth=max_depth), separators=(",", ":")).encode()


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    if len(data) > max_bytes:
        raise ChannelError(f"a message over {max_bytes} bytes")
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_objects)
    except ChannelError:
        raise
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep for the parser
        raise ChannelError(f"malformed message: {type(exc).__name__}") from None
    return from_wire(obj, max_depth=max_depth)


# ---------------------------------------------------------------------- frames on pipes


def send(fd: int, message, *, lenient: bool = False) -> None:
    data = encode(message, lenient=lenient)
    view = memoryview(_HEAD.pack(len(data)) + data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        raise ChannelClosed("the other side closed the channel") from None


def _read(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise ChannelError("no answer in time")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ChannelClosed("the program closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(
    fd: int, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, deadline: float | None = None
):
    """One message; the size is checked before anything is read past the 4-byte header."""
    (size,) = _HEAD.unpack(_read(fd, 4, deadline))
    if size > max_bytes:
        raise ChannelError(f"a message of {size} bytes (the limit is {max_bytes})")
    return decode(_read(fd, size, deadline), max_bytes=max_bytes, max_depth=max_depth)
