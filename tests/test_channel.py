"""The plain-data channel: exact round trips, strict decoding, size and depth limits."""

from __future__ import annotations

import os
from collections import Counter, OrderedDict, namedtuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editlm.evaluate import channel
from editlm.evaluate.channel import ChannelClosed, ChannelError, decode, encode

leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
hashable = st.recursive(
    leaves, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=8
)
plain = st.recursive(
    leaves | st.complex_numbers(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(hashable, inner, max_size=3)
        | st.sets(hashable, max_size=3)
        | st.frozensets(hashable, max_size=3)
    ),
    max_leaves=20,
)


def _same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 == True == 1.0 would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, set | frozenset):
        return a == b and all(any(_same(x, y) for y in b) for x in a)
    if isinstance(a, float | complex):
        return repr(a) == repr(b)  # -0.0 and nan too
    return a == b


@given(plain)
def test_plain_values_round_trip_exactly(value):
    assert _same(decode(encode(value)), value)


def test_special_numbers_and_big_ints():
    for value in (float("nan"), float("inf"), -0.0, 10**5000, -(10**5000), 1e-310, "\ud800", b"\x00\xff"):
        assert _same(decode(encode(value)), value)


@given(st.binary(max_size=200))
def test_random_bytes_are_rejected_or_plain(data):
    try:
        decode(data)
    except ChannelError:
        pass


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1}',
        b'["z", 1]',
        b'["s", ["l"]]',
        b'["d", 1]',
        b'["b", "!!"]',
        b"\xff",
        b'["x", "zz"]',
        b"[" * 100000,
    ],
)
def test_malformed_messages_are_channel_errors(text):
    with pytest.raises(ChannelError):
        decode(text)


def test_strict_and_lenient_encoding():
    class Anything:
        def __eq__(self, other):
            return True

    for bad in (Anything(), print, (i for i in ()), Counter(a=1), object):
        with pytest.raises(ChannelError, match="cannot cross"):
            encode(bad)
    point = namedtuple("Point", "x y")(1, 2)
    assert _same(
        decode(encode([point, Counter(a=1), OrderedDict(b=2)], lenient=True)), [(1, 2), {"a": 1}, {"b": 2}]
    )
    with pytest.raises(ChannelError, match="cannot cross"):
        encode(Anything(), lenient=True)


def test_depth_and_size_limits():
    deep = []
    for _ in range(channel.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ChannelError, match="deeper"):
        encode(deep)
    wire = b'["l",' * 150 + b'"x"' + b"]" * 150
    with pytest.raises(ChannelError, match="deeper"):
        decode(wire)
    with pytest.raises(ChannelError, match="bytes"):
        decode(encode("x" * 100), max_bytes=50)


def test_frames_on_a_pipe():
    r, w = os.pipe()
    try:
        channel.send(w, ["call", "f", (1, [2.5]), {"k": None}])
        assert channel.receive(r) == ["call", "f", (1, [2.5]), {"k": None}]
        os.write(w, (10**9).to_bytes(4, "big"))
        with pytest.raises(ChannelError, match="limit"):
            channel.receive(r)
        os.close(w)
        w = None
        with pytest.raises(ChannelClosed):
            channel.receive(r)
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
