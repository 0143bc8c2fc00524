"""Concatenate Parquet files into one without decoding them: their column chunks are copied byte for
byte and one footer is written that lists every row group, its offsets moved to where the chunks now lie.

Why by hand: pyarrow (26) can only concatenate by reading every value and encoding it again, which
for a mining job (hundreds of MB of file texts, zstd) cost more CPU than the mining itself; Arrow's
own rewriter (apache/arrow#47628) is not released. A Parquet file is ``PAR1``, the column chunks,
the footer (a Thrift compact-protocol ``FileMetaData``), its length and ``PAR1``; every position in
the footer is absolute, so moving a file's chunks by ``shift`` bytes means adding ``shift`` to the
footer's offsets (``parquet.thrift``: ``RowGroup.file_offset``, ``ColumnChunk.file_offset``,
``ColumnMetaData.data_page_offset``, ``index_page_offset``, ``dictionary_page_offset``).

Only files this can move safely are concatenated: the same schema and key-value metadata (pyarrow's
``ARROW:schema``), no encryption, no page index and no Bloom filters (those are stored apart from
the chunks and hold their own offsets). :func:`concat_parquet` returns False for anything else, and
the caller re-encodes instead.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

MAGIC = b"PAR1"

# Thrift compact protocol types.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)

# Field ids (parquet.thrift).
_FMD_NUM_ROWS, _FMD_ROW_GROUPS = 3, 4
_FMD_SCHEMA, _FMD_KEY_VALUE = 2, 5
_FMD_ENCRYPTION = (8, 9)
_RG_COLUMNS, _RG_NUM_ROWS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 3, 5, 7
_CC_FILE_PATH, _CC_FILE_OFFSET, _CC_META = 1, 2, 3
_CC_APART = (4, 5, 6, 7, 8, 9)  # page index offsets and lengths, encryption
_CMD_OFFSETS = (9, 10, 11)  # data, index and dictionary page offsets
_CMD_BLOOM = (14, 15)


class ThriftError(ValueError):
    """Bytes that are not a Thrift compact-protocol struct of the expected shape."""


# --------------------------------------------------------------------------- Thrift compact protocol
# A struct decodes to a list of [field id, type, value]; lists and sets to (element type, [values]);
# maps to (key type, value type, [(key, value)]); booleans inside containers keep their byte. Encoding
# the decoded value gives back the same bytes (tested on pyarrow's footers).


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ThriftError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63) if n < 0 else n << 1


def _read_value(buf: bytes, pos: int, kind: int):
    if kind == _BYTE:
        return buf[pos], pos + 1
    if kind in (_I16, _I32, _I64):
        raw, pos = _read_varint(buf, pos)
        return _unzigzag(raw), pos
    if kind == _DOUBLE:
        return buf[pos : pos + 8], pos + 8
    if kind == _BINARY:
        size, pos = _read_varint(buf, pos)
        if pos + size > len(buf):
            raise ThriftError("truncated binary")
        return buf[pos : pos + size], pos + size
    if kind in (_LIST, _SET):
        header = buf[pos]
        pos += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, pos = _read_varint(buf, pos)
        values = []
        for _ in range(size):
            if element in (_TRUE, _FALSE):
                value, pos = buf[pos], pos + 1
            else:
                value, pos = _read_value(buf, pos, element)
            values.append(value)
        return (element, values), pos
    if kind == _MAP:
        size, pos = _read_varint(buf, pos)
        if not size:
            return (0, 0, []), pos
        types = buf[pos]
        pos += 1
        ktype, vtype = types >> 4, types & 0x0F
        items = []
        for _ in range(size):
            key, pos = _read_value(buf, pos, ktype)
            value, pos = _read_value(buf, pos, vtype)
            items.append((key, value))
        return (ktype, vtype, items), pos
    if kind == _STRUCT:
        return _read_struct(buf, pos)
    raise ThriftError(f"unknown Thrift compact type {kind}")


def _read_struct(buf: bytes, pos: int) -> tuple[list, int]:
    fields: list = []
    last = 0
    while True:
        if pos >= len(buf):
            raise ThriftError("truncated struct")
        header = buf[pos]
        pos += 1
        kind = header & 0x0F
        if kind == _STOP:
            return fields, pos
        delta = header >> 4
        if delta:
            fid = last + delta
        else:
            raw, pos = _read_varint(buf, pos)
            fid = _unzigzag(raw)
        last = fid
        if kind in (_TRUE, _FALSE):
            value = kind == _TRUE
        else:
            value, pos = _read_value(buf, pos, kind)
        fields.append([fid, kind, value])


def decode_struct(buf: bytes) -> list:
    """A Thrift compact-protocol struct (the whole of ``buf``) as ``[[field id, type, value], ...]``."""
    fields, end = _read_struct(buf, 0)
    if end != len(buf):
        raise ThriftError(f"{len(buf) - end} bytes after the struct")
    return fields


def _write_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_value(out: bytearray, kind: int, value) -> None:
    if kind == _BYTE:
        out.append(value)
    elif kind in (_I16, _I32, _I64):
        _write_varint(out, _zigzag(value))
    elif kind == _DOUBLE:
        out += value
    elif kind == _BINARY:
        _write_varint(out, len(value))
        out += value
    elif kind in (_LIST, _SET):
        element, values = value
        if len(values) < 15:
            out.append(len(values) << 4 | element)
        else:
            out.append(0xF0 | element)
            _write_varint(out, len(values))
        for item in values:
            if element in (_TRUE, _FALSE):
                out.append(item)
            else:
                _write_value(out, element, item)
    elif kind == _MAP:
        ktype, vtype, items = value
        _write_varint(out, len(items))
        if items:
            out.append(ktype << 4 | vtype)
            for key, item in items:
                _write_value(out, ktype, key)
                _write_value(out, vtype, item)
    elif kind == _STRUCT:
        _write_struct(out, value)
    else:
        raise ThriftError(f"unknown Thrift compact type {kind}")


def _write_struct(out: bytearray, fields: list) -> None:
    last = 0
    for fid, kind, value in fields:
        if kind in (_TRUE, _FALSE):
            kind = _TRUE if value else _FALSE
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            _write_varint(out, _zigzag(fid))
        last = fid
        if kind not in (_TRUE, _FALSE):
            _write_value(out, kind, value)
    out.append(_STOP)


def encode_struct(fields: list) -> bytes:
    out = bytearray()
    _write_struct(out, fields)
    return bytes(out)


# --------------------------------------------------------------------------- Parquet footers


def _field(fields: list, fid: int):
    return next((f for f in fields if f[0] == fid), None)


def read_footer(path: str | Path) -> tuple[list, int]:
    """``(FileMetaData fields, where the footer starts)`` of a Parquet file."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size < 12:
            raise ThriftError(f"{path}: too short for Parquet")
        handle.seek(size - 8)
        tail = handle.read(8)
        if tail[4:] != MAGIC:
            raise ThriftError(f"{path}: no Parquet footer (encrypted or not Parquet)")
        length = struct.unpack("<I", tail[:4])[0]
        start = size - 8 - length
        if start < 4:
            raise ThriftError(f"{path}: footer longer than the file")
        handle.seek(0)
        if handle.read(4) != MAGIC:
            raise ThriftError(f"{path}: not Parquet")
        handle.seek(start)
        return decode_struct(handle.read(length)), start


def _movable(meta: list) -> bool:
    """No part of the file that holds offsets outside the footer, and no encryption."""
    if any(_field(meta, fid) for fid in _FMD_ENCRYPTION):
        return False
    for group in _field(meta, _FMD_ROW_GROUPS)[2][1]:
        for chunk in _field(group, _RG_COLUMNS)[2][1]:
            if _field(chunk, _CC_FILE_PATH) or any(_field(chunk, fid) for fid in _CC_APART):
                return False
            column = _field(chunk, _CC_META)
            if column is None or any(_field(column[2], fid) for fid in _CMD_BLOOM):
                return False
    return True


def _moved(group: list, shift: int, ordinal: int) -> list:
    """A row group's fields with every offset moved by ``shift`` and its ordinal set."""
    group = [list(f) for f in group]
    for entry in group:
        if entry[0] == _RG_FILE_OFFSET:
            entry[2] += shift
        elif entry[0] == _RG_ORDINAL:
            entry[2] = ordinal
        elif entry[0] == _RG_COLUMNS:
            element, chunks = entry[2]
            moved = []
            for chunk in chunks:
                chunk = [list(f) for f in chunk]
                for item in chunk:
                    if item[0] == _CC_FILE_OFFSET and item[2]:  # 0: not set (writers are told to leave it 0)
                        item[2] += shift
                    elif item[0] == _CC_META:
                        column = [list(f) for f in item[2]]
                        for value in column:
                            if value[0] in _CMD_OFFSETS:
                                value[2] += shift
                        item[2] = column
                moved.append(chunk)
            entry[2] = (element, moved)
    return group


def concat_parquet(sources: list[str | Path], out: str | Path) -> bool:
    """Write the rows of ``sources``, in order, to ``out`` as one Parquet file, copying their column
    chunks as they are; False (and ``out`` untouched) when they cannot be moved safely or do not share
    one schema. The result has one row group per row group of the sources."""
    if not sources:
        return False
    footers = []
    for source in sources:
        try:
            meta, start = read_footer(source)
        except (OSError, ThriftError, IndexError, TypeError):
            return False
        footers.append((meta, start))
    first = footers[0][0]
    key = (_field(first, _FMD_SCHEMA), _field(first, _FMD_KEY_VALUE))
    for meta, _ in footers:
        if (_field(meta, _FMD_SCHEMA), _field(meta, _FMD_KEY_VALUE)) != key or not _movable(meta):
            return False
    groups: list = []
    rows = 0
    with open(out, "wb") as target:
        target.write(MAGIC)
        for source, (meta, start) in zip(sources, footers, strict=True):
            shift = target.tell() - len(MAGIC)
            with open(source, "rb") as handle:
                handle.seek(len(MAGIC))
                _copy(handle, target, start - len(MAGIC))
            for group in _field(meta, _FMD_ROW_GROUPS)[2][1]:
                groups.append(_moved(group, shift, len(groups)))
            rows += _field(meta, _FMD_NUM_ROWS)[2]
        if len(groups) > 2**15 - 1:  # the ordinal is an i16: leave it out rather than wrap
            groups = [[f for f in g if f[0] != _RG_ORDINAL] for g in groups]
        footer = []
        for entry in first:
            if entry[0] == _FMD_NUM_ROWS:
                entry = [entry[0], entry[1], rows]
            elif entry[0] == _FMD_ROW_GROUPS:
                entry = [entry[0], entry[1], (entry[2][0], groups)]
            footer.append(entry)
        encoded = encode_struct(footer)
        target.write(encoded)
        target.write(struct.pack("<I", len(encoded)))
        target.write(MAGIC)
    return True


def _copy(source, target, size: int) -> None:
    """``size`` bytes from ``source`` to ``target``, a megabyte at a time."""
    left = size
    while left > 0:
        block = source.read(min(left, 1 << 20))
        if not block:
            raise ThriftError("a Parquet file shrank while it was copied")
        target.write(block)
        left -= len(block)


__all__ = ["ThriftError", "concat_parquet", "decode_struct", "encode_struct", "read_footer"]
