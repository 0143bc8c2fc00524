"""What ``git diff-tree -p -M`` prints for a commit, rebuilt on pygit2: rename pairing, headers, hunks.

libgit2 writes the hunks (with git's default indent heuristic switched on, which libgit2 leaves off), and
this module does what libgit2 does differently from git, following git 2.39-2.47's source:

- **Rename pairing** (:func:`pair_renames`) is git's ``diffcore_rename`` for ``-M``: exact renames first
  (same blob, the source with the same basename preferred), then sources and destinations whose
  basenames are unique on both sides paired when at least 75% similar, then the similarity matrix (best
  four candidates per destination, sorted by score then same basename, greedy) above 50%; inexact
  matching is skipped when destinations x sources exceeds ``diff.renameLimit`` squared (1000).
  Similarity is git's ``diffcore-delta`` estimate: bytes of 64-byte-or-line chunks in common (CR of
  CRLF ignored in text) over the larger size. libgit2's ``find_similar`` scores and pairs differently.
  git >= 2.43.2 also counts a final line without newline (``final_line=True``, the default); 2.39 did not.
- **Headers** as git writes them: ``old/new mode`` before ``similarity index``, the ``index`` line's ids
  abbreviated the way git does (:class:`Abbreviations`: the length git picks from the number of packed
  objects, at least 7, lengthened until unique in the repository), paths C-quoted as with
  ``core.quotePath`` (non-ASCII bytes as octal) and a tab after ``---``/``+++`` paths holding a space.
- **Function context** after ``@@``: git cuts the line to 80 bytes and then strips trailing whitespace;
  libgit2 keeps whitespace at the cut.

Where it still cannot match: repositories with ``diff.*`` or ``core.abbrev`` settings, ``.gitattributes``
diff drivers (other function-context rules, binary or textconv), and function context cut inside a
multi-byte character (git writes the broken byte; the text here is decoded with replacement there).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

MAX_SCORE = 60_000
DEFAULT_RENAME_SCORE = 30_000  # 50%
BASENAME_SCORE = DEFAULT_RENAME_SCORE + (MAX_SCORE - DEFAULT_RENAME_SCORE) // 2  # 75%
RENAME_LIMIT = 1000  # diff.renameLimit's default for diff and log
_CANDIDATES = 4  # NUM_CANDIDATE_PER_DST
_HASHBASE = 107_927
_REGULAR, _FILE_TYPE = 0o100000, 0o170000
NULL_HEX = "0" * 40


@dataclass(frozen=True)
class Side:
    """One side of a changed file: path (str and raw bytes), blob id (hex) and mode."""

    path: str
    raw: bytes
    oid: str
    mode: int


@dataclass
class Change:
    """A file pair as git reports it: status A, D, M, T or R; ``score`` out of MAX_SCORE for R."""

    status: str
    old: Side | None
    new: Side | None
    score: int | None = None
    index: int = field(default=0, compare=False)  # position in the tree diff, for git's output order


def _is_regular(mode: int) -> bool:
    return mode & _FILE_TYPE == _REGULAR


def basename_same(a: bytes, b: bytes) -> bool:
    """git's ``basename_same``: the two paths end in the same basename."""
    return a.rsplit(b"/", 1)[-1] == b.rsplit(b"/", 1)[-1]


def is_binary(data: bytes) -> bool:
    """git's ``buffer_is_binary``: a NUL byte among the first 8000 bytes."""
    return b"\0" in data[:8000]


@functools.lru_cache(maxsize=1 << 16)
def _span_hash(piece: bytes) -> int:
    accum1 = accum2 = 0
    mask = 0xFFFFFFFF
    for c in piece:
        old = accum1
        accum1 = (((accum1 << 7) ^ (accum2 >> 25)) + c) & mask
        accum2 = ((accum2 << 7) ^ (old >> 25)) & mask
    return (accum1 + accum2 * 0x61) % _HASHBASE


def span_counts(data: bytes, final_line: bool = True) -> Counter:
    """git's ``hash_chars``: bytes per hash of each chunk (a line, or 64 bytes of a longer line).

    Written in Python with a cache per chunk (lines repeat a lot in code); only the files that may be
    renames are hashed.
    """
    if not is_binary(data):
        data = data.replace(b"\r\n", b"\n")  # the CR of CRLF is skipped, the LF ends the chunk
    counts: Counter = Counter()
    lines = data.split(b"\n")
    last = lines.pop()  # after the final newline: b"" or a line without one
    for line in lines:
        line += b"\n"
        for start in range(0, len(line), 64):
            piece = line[start : start + 64]
            counts[_span_hash(piece)] += len(piece)
    if last and final_line:
        for start in range(0, len(last), 64):
            piece = last[start : start + 64]
            counts[_span_hash(piece)] += len(piece)
    elif last:  # git < 2.43.2 counted only the full 64-byte chunks of an unterminated last line
        for start in range(0, len(last) - len(last) % 64, 64):
            piece = last[start : start + 64]
            counts[_span_hash(piece)] += 64
    return counts


class _Files:
    """Blob sizes, contents and chunk counts, each read once per commit."""

    def __init__(self, read: Callable[[str], bytes], final_line: bool):
        self.read, self.final_line = read, final_line
        self.data: dict[str, bytes] = {}
        self.counts: dict[str, Counter] = {}

    def content(self, oid: str) -> bytes:
        if oid not in self.data:
            self.data[oid] = self.read(oid)
        return self.data[oid]

    def count(self, oid: str) -> Counter:
        if oid not in self.counts:
            self.counts[oid] = span_counts(self.content(oid), self.final_line)
        return self.counts[oid]


def similarity(src: Side, dst: Side, files: _Files, minimum: int) -> int:
    """git's ``estimate_similarity`` (0..MAX_SCORE); 0 for non-regular files or far-apart sizes."""
    if not (_is_regular(src.mode) and _is_regular(dst.mode)):
        return 0
    a, b = len(files.content(src.oid)), len(files.content(dst.oid))
    high, low = max(a, b), min(a, b)
    if high * (MAX_SCORE - minimum) < (high - low) * MAX_SCORE:
        return 0
    if not b:
        return 0
    src_counts, dst_counts = files.count(src.oid), files.count(dst.oid)
    if len(src_counts) > len(dst_counts):
        src_counts, dst_counts = dst_counts, src_counts
    copied = sum(min(n, dst_counts[h]) for h, n in src_counts.items() if h in dst_counts)
    return copied * MAX_SCORE // high


def pair_renames(
    changes: list[Change],
    read: Callable[[str], bytes],
    *,
    final_line: bool = True,
    limit: int = RENAME_LIMIT,
) -> list[Change]:
    """``changes`` with deleted + added files paired into renames the way ``git diff -M`` pairs them.

    ``read(oid)`` gives a blob's bytes (only candidates of inexact renames are read). The result is in
    git's output order: a rename takes its destination's place and its deletion disappears.
    """
    sources = sorted((c for c in changes if c.status == "D"), key=lambda c: c.old.raw)
    targets = sorted((c for c in changes if c.status == "A"), key=lambda c: c.new.raw)
    if not sources or not targets:
        return changes
    files = _Files(read, final_line)
    used: set[int] = set()  # indexes into sources
    paired: dict[int, tuple[int, int]] = {}  # target index -> (source index, score)

    # 1. exact renames: the same blob; an unused source with the same basename first
    by_oid: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        by_oid.setdefault(src.old.oid, []).append(i)
    for t, dst in enumerate(targets):
        best, best_score = None, -1
        for i in by_oid.get(dst.new.oid, [])[:100]:
            src = sources[i].old
            if not (_is_regular(src.mode) and _is_regular(dst.new.mode)) and src.mode != dst.new.mode:
                continue
            if i in used:
                continue
            score = 1 + basename_same(src.raw, dst.new.raw)
            if score > best_score:
                best, best_score = i, score
                if score == 2:
                    break
        if best is not None:
            used.add(best)
            paired[t] = (best, MAX_SCORE)

    # 2. basenames unique among the remaining sources and destinations, at least 75% similar
    remaining = [i for i in range(len(sources)) if i not in used]
    src_base: dict[bytes, int] = {}
    for i in remaining:
        base = posixpath.basename(sources[i].old.raw)
        src_base[base] = -1 if base in src_base else i
    dst_base: dict[bytes, int] = {}
    for t in range(len(targets)):
        if t not in paired:
            base = posixpath.basename(targets[t].new.raw)
            dst_base[base] = -1 if base in dst_base else t
    for i in remaining:
        base = posixpath.basename(sources[i].old.raw)
        t = dst_base.get(base)
        if t is None or t == -1 or src_base[base] == -1 or t in paired:
            continue
        score = similarity(sources[i].old, targets[t].new, files, BASENAME_SCORE)
        if score >= BASENAME_SCORE:
            used.add(i)
            paired[t] = (i, score)

    # 3. the similarity matrix
    remaining = [i for i in range(len(sources)) if i not in used]
    open_targets = [t for t in range(len(targets)) if t not in paired]
    if remaining and open_targets and len(remaining) * len(open_targets) <= limit * limit:
        candidates: list[tuple[int, int, int, int]] = []  # (score, same basename, target, source)
        for t in open_targets:
            best: list[tuple[int, int, int, int]] = []
            for i in remaining:
                score = similarity(sources[i].old, targets[t].new, files, DEFAULT_RENAME_SCORE)
                entry = (score, int(basename_same(sources[i].old.raw, targets[t].new.raw)), t, i)
                if len(best) < _CANDIDATES:
                    best.append(entry)
                    continue
                worst = min(range(_CANDIDATES), key=lambda k: (best[k][0], best[k][1], k))
                if (entry[0], entry[1]) > (best[worst][0], best[worst][1]):
                    best[worst] = entry
            candidates += best
        # git sorts the slots stably, best score first, then same basename first
        candidates.sort(key=lambda e: (-e[0], -e[1]))
        for score, _, t, i in candidates:
            if score < DEFAULT_RENAME_SCORE:
                break
            if t in paired or i in used:
                continue
            used.add(i)
            paired[t] = (i, score)

    renamed = {id(sources[i]) for i in used}
    into = {id(targets[t]): (sources[i], score) for t, (i, score) in paired.items()}
    out = []
    for change in changes:
        if id(change) in renamed:
            continue
        if id(change) in into:
            source, score = into[id(change)]
            change = replace(change, status="R", old=source.old, score=score)
        out.append(change)
    return out


# --------------------------------------------------------------------------- abbreviations


def _packed_objects(git_dir: Path) -> int:
    """Objects in the repository's pack indexes (what git's ``approximate_object_count`` adds up)."""
    total = 0
    for idx in (git_dir / "objects" / "pack").glob("*.idx"):
        try:
            with open(idx, "rb") as handle:
                head = handle.read(8 + 256 * 4)
        except OSError:
            continue
        offset = 8 if head[:4] == b"\xfftOc" else 0
        total += int.from_bytes(head[offset + 255 * 4 : offset + 256 * 4], "big")
    return total


def auto_abbrev(count: int) -> int:
    """git's automatic abbreviation length for ``count`` objects: half the bits, at least 7."""
    bits = count.bit_length()  # git's msb(count) + 1
    return max(7, (bits + 1) // 2)


class Abbreviations:
    """Ids abbreviated as git abbreviates them in ``index`` lines, for one repository.

    All object ids are read once (first 8 bytes, sorted; 8 bytes per object) so that each
    abbreviation is a binary search: the shortest prefix, at least :func:`auto_abbrev` long, that no
    other object shares.
    """

    def __init__(self, oids: Iterable, packed: int):
        from array import array  # not numpy: importing it cost more than mining a small history

        self.keys = array("Q", sorted({int.from_bytes(o.raw[:8], "big") for o in oids}))
        self.minimum = auto_abbrev(packed)
        self._cache: dict[str, str] = {}

    @classmethod
    def of(cls, repo) -> Abbreviations:
        return cls(repo.odb, _packed_objects(Path(repo.path)))

    def __call__(self, hex_id: str) -> str:
        found = self._cache.get(hex_id)
        if found is not None:
            return found
        from bisect import bisect_left

        key = int(hex_id[:16], 16)
        keys = self.keys
        at = bisect_left(keys, key)
        size = len(keys)
        itself = at < size and keys[at] == key
        neighbours = [at - 1, at + 1] if itself else [at - 1, at]
        common = 0
        for n in neighbours:
            if 0 <= n < size:
                common = max(common, (64 - (key ^ keys[n]).bit_length()) // 4)
        short = hex_id[: max(self.minimum, common + 1)]
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[hex_id] = short
        return short


def plain_abbrev(hex_id: str) -> str:
    """Without a repository (a patch of two texts): git's minimum of 7."""
    return hex_id[:7]


# --------------------------------------------------------------------------- text


_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 34: '"', 92: "\\"}


_QUOTED = re.compile(rb'[\x00-\x1f\x7f-\xff"\\]')  # what quote_c_style escapes


def _needs_quote(raw: bytes) -> bool:
    return _QUOTED.search(raw) is not None


def _escape(raw: bytes) -> str:
    out = []
    for c in raw:
        if c in _ESCAPES:
            out.append("\\" + _ESCAPES[c])
        elif c < 0x20 or c >= 0x7F:
            out.append(f"\\{c:03o}")
        else:
            out.append(chr(c))
    return "".join(out)


def quote_path(raw: bytes, prefix: str = "") -> str:
    """git's ``quote_c_style`` of ``prefix + path`` (``core.quotePath`` on): as is when plain."""
    whole = prefix.encode() + raw
    return f'"{_escape(whole)}"' if _needs_quote(whole) else whole.decode("utf-8")


def header(change: Change, abbrev: Callable[[str], str], hunks: bool) -> str:
    """The lines git writes before a text diff's first ``@@`` (``---``/``+++`` only with hunks)."""
    old, new = change.old or change.new, change.new or change.old
    lines = [f"diff --git {quote_path(old.raw, 'a/')} {quote_path(new.raw, 'b/')}"]
    if change.old is None:
        lines.append(f"new file mode {new.mode:06o}")
    elif change.new is None:
        lines.append(f"deleted file mode {old.mode:06o}")
    elif old.mode != new.mode:
        lines += [f"old mode {old.mode:06o}", f"new mode {new.mode:06o}"]
    if change.status == "R":
        lines += [
            f"similarity index {change.score * 100 // MAX_SCORE}%",
            f"rename from {quote_path(old.raw)}",
            f"rename to {quote_path(new.raw)}",
        ]
    old_id = change.old.oid if change.old else NULL_HEX
    new_id = change.new.oid if change.new else NULL_HEX
    if old_id != new_id:
        same_mode = change.old is not None and change.new is not None and old.mode == new.mode
        lines.append(f"index {abbrev(old_id)}..{abbrev(new_id)}" + (f" {old.mode:06o}" if same_mode else ""))
    if hunks:
        lines.append("--- " + (_label(old.raw, "a/") if change.old else "/dev/null"))
        lines.append("+++ " + (_label(new.raw, "b/") if change.new else "/dev/null"))
    return "\n".join(lines) + "\n"


def _label(raw: bytes, prefix: str) -> str:
    return quote_path(raw, prefix) + ("\t" if b" " in raw else "")


def hunks_of(old, new) -> str | None:
    """The ``@@`` sections git writes for two texts (bytes, ``pygit2.Blob`` or None for a missing side;
    None: no line changed), function context as git. Blobs are not hashed again, and the caller keeps
    ``old`` and ``new`` alive: libgit2's patch points into them until ``patch.data`` is read."""
    import pygit2
    from pygit2.enums import DiffOption

    patch = pygit2.Patch.create_from(
        old,
        new,
        flag=DiffOption.FORCE_TEXT | DiffOption.INDENT_HEURISTIC,
        context_lines=3,
        interhunk_lines=0,
    )
    data = patch.data
    at = data.find(b"\n@@")
    if at < 0:
        return None
    return _git_function_context(data[at + 1 :]).decode("utf-8", errors="replace")


_SPACE = b" \t\n\v\f\r"


def _git_function_context(hunks: bytes) -> bytes:
    """Strip trailing whitespace from the text after each ``@@ ... @@`` (git cuts, then strips)."""
    if hunks.find(b"@@ ", 3) < 0:
        return hunks
    pieces = []
    start = 0  # a header line starts here
    while True:
        newline = hunks.find(b"\n", start)
        end = len(hunks) if newline < 0 else newline
        close = hunks.find(b" @@", start + 2, end)
        if close >= 0 and end > close + 3:
            pieces.append(hunks[start : close + 3])
            context = hunks[close + 3 : end].rstrip(_SPACE)
            if context.strip(_SPACE):
                pieces.append(context)
        else:
            pieces.append(hunks[start:end])
        following = hunks.find(b"\n@@ ", end) if newline >= 0 else -1
        if following < 0:
            pieces.append(hunks[end:])
            return b"".join(pieces)
        pieces.append(hunks[end : following + 1])
        start = following + 1
