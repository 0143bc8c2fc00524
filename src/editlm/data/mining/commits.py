"""Git history into diff-model records: one record per changed file of each non-merge commit.

All git access goes through pygit2 (libgit2 in-process): a tree-to-tree diff per commit gives the changed
files, :mod:`editlm.data.mining.gitdiff` pairs renames and writes each file's diff as
``git diff-tree -p -M`` prints it (git's rename pairing and similarity, headers, ``index``
abbreviations, indent heuristic and function context; tested against git on real histories, with the
exceptions listed there). No ``git`` subprocess is started, which is why this is many times faster than
PyDriller on the same output (``benchmarks/mining_speed.py``); with two cores, a helper process makes
the diffs ahead of the miner (:mod:`editlm.data.mining.ahead`, the same rows).

A record (:data:`COLUMNS`) holds the file before and after, the full unified diff as git prints it,
and ``sample``: the diff-model training text ``<NME> path\\n<BEF> before\\n<MSG> message\\n<DFF> @@ ...``
(:class:`editlm.edits.diff_model.DiffSample`), whose diff starts at its first ``@@`` and carries bare
hunk headers (git's function-name suffix dropped) so that a prompt ``<DFF> @@ -1,3 +1,9 @@`` reads like
training data. Every record's sample diff is checked to turn ``before`` into ``after`` exactly
(:func:`hunks_apply`, a single pass over the hunks) before it is emitted (``MiningOptions(verify=False)``
skips the check; the construction itself is property-tested).

A shallow clone's boundary commits (whose parents git does not have) are dropped and counted, never
mined as root commits that would "add" every file.

Anything that cannot become a record is dropped with a reason (``commit: merge``, ``file: binary``, ...)
so that jobs can count drops by reason; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from editlm.data.mining import ahead, gitdiff
from editlm.data.mining import filters as mining_filters
from editlm.data.mining import licenses as mining_licenses
from editlm.data.mining.languages import language_of
from editlm.edits.diff_model import DiffSample, FormatError

COLUMNS = (
    "repository",  # name: the origin remote URL, else the directory name
    "commit",  # hex id
    "parent",  # hex id of the first parent; None for a root commit
    "date",  # committer date, ISO 8601 with the committer's UTC offset
    "path",  # path after the change (before it, for a deleted file)
    "old_path",  # path before the change; differs from path for a rename; None for an added file
    "change",  # added | modified | renamed | deleted
    "language",  # one of mining_languages.LANGUAGES, or None
    "license",  # SPDX expression of the repository's license files at this commit, NOASSERTION, or None
    "message",  # commit message, stripped
    "before",  # file before (cropped with crop_context); None for an added file
    "after",  # file after (cropped with crop_context); None for a deleted file
    "diff",  # full unified diff as git prints it (git header, ---/+++, @@ sections); of the cropped files
    # with crop_context
    "sample",  # diff-model text: <NME> <BEF> <MSG> <DFF> with the diff from its first @@
    "prompt",  # the sample up to and including <DFF>: what `editlm train sft` conditions on
    "completion",  # the rest of the sample: the diff (recipe sft-diff also puts the loss on <DFF>)
    "crop_start",  # with crop_context: 0-based line of the original file where before starts; else None
)

_LINK, _SUBMODULE = 0o120000, 0o160000


class MiningError(ValueError):
    """A path that is not a git repository, or a revision that does not name a commit."""


@dataclass(frozen=True)
class MiningOptions:
    """What to mine and what to keep. Picklable: it travels to worker processes and Dask workers."""

    filter: str = "none"  # a preset of mining_filters.PRESETS
    max_tokens: int | None = None  # None: the preset's default (carperai: 2048), else no limit
    tokenizer: str = mining_filters.CHARS_PER_TOKEN  # "chars/4", a tokenizer directory or tokenizer.json
    crop_context: int | None = None  # crop the file before to the changed lines plus this many around
    max_file_bytes: int = 1_000_000  # larger blobs are skipped as "file: huge" without being diffed
    seed: int = 0  # decides which version-bump commits the commitpackft preset keeps
    verify: bool = True  # check that every row's diff turns before into after (cheap; see hunks_apply)
    min_pair_tokens: int | None = None  # commitpackft's token rule on before + <|endoftext|> + after:
    max_pair_tokens: int | None = None  # None: the preset's bounds (50, 768); 0: no bound

    def __post_init__(self) -> None:
        mining_filters.preset(self.filter)  # raises ValueError for an unknown preset
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError("max_tokens must be positive")
        if self.crop_context is not None and self.crop_context < 0:
            raise ValueError("crop_context must be >= 0")
        if self.max_file_bytes < 1:
            raise ValueError("max_file_bytes must be positive")
        for bound in (self.min_pair_tokens, self.max_pair_tokens):
            if bound is not None and bound < 0:
                raise ValueError("pair token bounds must be >= 0 (0: no bound)")

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.rules.default_max_tokens

    @property
    def pair_tokens(self) -> tuple[int, int] | None:
        """(min, max) tokens of before + after for the commitpackft preset; max 0 is no upper bound."""
        default = self.rules.pair_tokens
        if default is None and self.min_pair_tokens is None and self.max_pair_tokens is None:
            return None
        low = self.min_pair_tokens if self.min_pair_tokens is not None else (default or (0, 0))[0]
        high = self.max_pair_tokens if self.max_pair_tokens is not None else (default or (0, 0))[1]
        return None if not low and not high else (low, high)

    @property
    def counts_tokens(self) -> bool:
        return self.token_limit is not None or self.pair_tokens is not None

    @property
    def rules(self) -> mining_filters.FilterPreset:
        return mining_filters.preset(self.filter)


@dataclass
class CommitResult:
    """What one commit gave: its records, or why it was dropped whole, and its dropped files."""

    commit: str
    rows: list[dict] = field(default_factory=list)
    reason: str | None = None
    file_skips: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


# --------------------------------------------------------------------------- repositories


def open_repository(path: str | Path):
    """A pygit2 Repository for a working tree or a bare repository (its top: a folder inside a
    working tree is refused rather than silently standing for the whole repository)."""
    import pygit2
    from pygit2.enums import RepositoryOpenFlag

    # libgit2 hashes every object it reads to check its id (git itself does not: ``git fsck`` does);
    # that hash cost more than the diffs. Process-wide; object ids are still what the trees name.
    pygit2.option(pygit2.GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0)
    try:
        return pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, ValueError) as exc:
        if "not owned by current user" in str(exc):  # libgit2 applies git's safe.directory check
            raise MiningError(
                f"{path}: a git repository owned by another user, which git refuses to read; if you "
                f"trust it: git config --global --add safe.directory {Path(path).resolve()}"
            ) from None
        raise MiningError(f"{path}: not a git repository ({exc})") from None


def repository_name(repo, path: str | Path) -> str:
    """The origin remote's URL when there is one (it names the project), else the directory name."""
    try:
        url = repo.remotes["origin"].url
    except (KeyError, ValueError):
        url = None
    if url:
        return _without_credentials(url)
    name = Path(path).resolve().name
    return name[:-4] if name.endswith(".git") and len(name) > 4 else name


def _without_credentials(url: str) -> str:
    """``https://user:token@host/x`` -> ``https://host/x``: a dataset must not carry secrets."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url  # a local path or scp-like ``git@host:org/repo``, which holds no password
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def list_commits(repo, rev: str = "HEAD") -> list[str]:
    """Hex ids of all commits reachable from ``rev``, newest first (topological order); ``[]`` for a
    repository without commits."""
    import pygit2
    from pygit2.enums import SortMode

    if rev == "HEAD" and (repo.head_is_unborn or repo.is_empty):
        return []
    try:
        target = repo.revparse_single(rev).peel(pygit2.Commit).id
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise MiningError(f"{repo.path}: {rev!r} does not name a commit ({exc})") from None
    return [str(c.id) for c in repo.walk(target, SortMode.TOPOLOGICAL | SortMode.TIME)]


class RepoCache:
    """What a worker keeps per repository: detected license blobs, id abbreviations, shallow bounds."""

    def __init__(self) -> None:
        self._by_blob: dict = {}
        self._by_commit: dict[str, str | None] = {}  # parent id -> licence, from a mined child
        self._abbrev = None
        self._shallow: frozenset[str] | None = None
        self._blobs: OrderedDict = OrderedDict()  # hex id -> recent pygit2.Blob, newest last
        self._blob_bytes = 0
        self._texts: OrderedDict = OrderedDict()  # hex id -> (recent text or _BINARY/_NOT_UTF8, bytes)
        self._text_bytes = 0

    def blob(self, repo, oid: str, max_bytes: int):
        """A ``pygit2.Blob``, None when larger than ``max_bytes`` (KeyError when missing). The file after
        one commit is the file before the next one that touches it, so recent blobs are kept (32 MB).

        Blob objects rather than their bytes: libgit2 diffs two blobs without hashing them again
        (``Patch.create_from`` on bytes hashes both buffers, a third of the diff's time on large files),
        and their text is decoded straight from the blob's buffer."""
        blob = self._blobs.get(oid)
        if blob is not None:
            self._blobs.move_to_end(oid)
            return blob if blob.size <= max_bytes else None
        _, size = repo.odb.read_header(oid)
        if size > max_bytes:
            return None
        blob = repo[oid]
        if size <= 4 << 20:
            self._blobs[oid] = blob
            self._blob_bytes += size
            while self._blob_bytes > 32 << 20:
                self._blob_bytes -= self._blobs.popitem(last=False)[1].size
        return blob

    def text(self, oid: str, blob):
        """The blob's text, or :data:`_BINARY` (git's rule) or :data:`_NOT_UTF8`. Recent texts are kept
        (32 MB), as blobs are: decoding each file twice (after one commit, before the next) cost 4% of
        mining more-itertools."""
        kept = self._texts.get(oid)
        if kept is not None:
            self._texts.move_to_end(oid)
            return kept[0]
        view = memoryview(blob)
        if is_binary(view[:8000].tobytes()):
            text = _BINARY
        else:
            try:
                text = str(view, "utf-8")
            except UnicodeDecodeError:
                text = _NOT_UTF8
        if len(view) <= 4 << 20:
            self._texts[oid] = (text, len(view))
            self._text_bytes += len(view)
            while self._text_bytes > 32 << 20:
                self._text_bytes -= self._texts.popitem(last=False)[1][1]
        return text

    def license_of(self, repo, commit, changes: list[gitdiff.Change]) -> str | None:
        """The licence at ``commit``. A commit that changes no licence file at the top of the tree has
        its first parent's licence files, so that parent (mined later, newest first) reuses the
        answer instead of reading its tree again."""
        hex_id = str(commit.id)
        found = self._by_commit.pop(hex_id, _UNKNOWN)
        if found is _UNKNOWN:
            found = self.license_at(repo, commit.tree)
        if commit.parent_ids and not any(_touches_license(c) for c in changes):
            if len(self._by_commit) > 100_000:
                self._by_commit.clear()
            self._by_commit[str(commit.parent_ids[0])] = found
        return found

    def license_at(self, repo, tree) -> str | None:
        files = []
        for entry in tree:
            if entry.type_str != "blob" or not mining_licenses.is_license_file(entry.name):
                continue
            key = entry.id
            if key not in self._by_blob:
                data = repo[key].data
                text = data.decode("utf-8", errors="replace")
                self._by_blob[key] = mining_licenses.detect_license(text)
            files.append((entry.name, self._by_blob[key]))
        return mining_licenses.combine(files)

    def abbrev(self, repo) -> gitdiff.Abbreviations:
        if self._abbrev is None:
            self._abbrev = gitdiff.Abbreviations.of(repo)
        return self._abbrev

    def shallow(self, repo) -> frozenset[str]:
        """The boundary commits of a shallow clone (their parents are not in the repository)."""
        if self._shallow is None:
            self._shallow = shallow_boundary(repo)
        return self._shallow


LicenseCache = RepoCache  # the name of earlier versions
_BINARY, _NOT_UTF8 = object(), object()  # RepoCache.text of a file that is not text
_UNKNOWN = object()


def _touches_license(change: gitdiff.Change) -> bool:
    """Whether a change adds, removes or edits a licence file at the top of the tree."""
    for side in (change.old, change.new):
        if side is not None and b"/" not in side.raw:
            try:
                name = side.raw.decode("utf-8")
            except UnicodeDecodeError:
                return True  # cannot tell: read the tree
            if mining_licenses.is_license_file(name):
                return True
    return False


def shallow_boundary(repo) -> frozenset[str]:
    if not repo.is_shallow:
        return frozenset()
    try:
        text = (Path(repo.path) / "shallow").read_text(encoding="ascii")
    except OSError:
        return frozenset()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


# --------------------------------------------------------------------------- one commit

# git >= 2.43.2 counts a last line without newline in rename similarity (gitdiff.span_counts)
GIT_FINAL_LINE = True


def mine_commit(
    repo, commit_id: str, options: MiningOptions, name: str, licenses: RepoCache, diffs=None
) -> CommitResult:
    """The records of one commit, or the reason it is dropped (see module docstring)."""
    result = CommitResult(str(commit_id))
    for kind, key, value in iter_commit(repo, commit_id, options, name, licenses, diffs):
        if kind == "commit":
            result.commit, result.reason = key, value
        elif isinstance(value, str):
            result.file_skips.append((key[1], value))
        else:
            result.rows.append(value)
    return result


def iter_commit(
    repo, commit_id: str, options: MiningOptions, name: str, cache: RepoCache, diffs=None
) -> Iterator[tuple]:
    """One commit as a stream: ``("file", (old path, path), record or drop reason)`` per changed file,
    then ``("commit", commit id, drop reason or None)``. A job writes each record as it comes, so a
    commit touching thousands of files never sits in memory whole. ``diffs``: the changed files and
    hunks a helper made ahead (:meth:`editlm.data.mining.ahead.DiffsAhead.lookup`), else all is made
    here."""

    commit = repo[commit_id]
    hex_id = str(commit.id)
    parents = commit.parent_ids
    reason, message, written = commit_message(commit, options, cache.shallow(repo))
    if reason:  # before any diff: the strict presets drop most commits on their message alone
        yield "commit", hex_id, reason
        return
    changes = diffs.changes() if diffs is not None else None
    if changes is None:
        changes = commit_changes(repo, commit)
    if not changes:
        yield "commit", hex_id, "commit: empty"
        return
    rules = options.rules
    license_id = cache.license_of(repo, commit, changes)
    same_path = sum(c.status in ("M", "T") for c in changes)
    reason = mining_filters.commit_reason(rules, license_id, same_path)
    if reason:
        yield "commit", hex_id, reason
        return

    tz = timezone(timedelta(minutes=commit.commit_time_offset))
    base = {
        "repository": name,
        "commit": hex_id,
        "parent": str(parents[0]) if parents else None,
        "date": datetime.fromtimestamp(commit.commit_time, tz).isoformat(),
        "license": license_id,
        "message": written,
    }
    context = _Context(
        repo=repo,
        options=options,
        rules=rules,
        base=base,
        subject=message.split("\n", 1)[0],
        abbrev=cache.abbrev(repo),
        cache=cache,
        count_tokens=mining_filters.token_counter(options.tokenizer) if options.counts_tokens else None,
        diffs=diffs,
    )
    for change in changes:
        path, row = _mine_file(change, context)
        old = change.old.raw.decode("utf-8", errors="replace") if change.old is not None else ""
        yield "file", (old, path), row
    yield "commit", hex_id, None


def commit_message(commit, options: MiningOptions, shallow: frozenset[str]) -> tuple[str | None, str, str]:
    """(drop reason or None, message, message as written) of a commit, from what it says alone: a
    shallow boundary, a merge, a message that cannot be decoded or that the preset drops."""
    hex_id = str(commit.id)
    if hex_id in shallow:
        return "commit: parents unknown (shallow clone boundary)", "", ""
    if len(commit.parent_ids) > 1:
        return "commit: merge", "", ""
    try:
        message = commit.raw_message.decode(commit.message_encoding or "utf-8").strip()
    except (UnicodeDecodeError, LookupError):
        return "commit: message not decodable", "", ""
    reason, written = mining_filters.message_reason(options.rules, message, hex_id, options.seed)
    return reason, message, written


def commit_changes(repo, commit) -> list[gitdiff.Change]:
    """The files a commit changes, renames paired as ``git diff -M`` pairs them, in git's order."""
    changes = tree_changes(repo, commit)
    if not changes:
        return changes
    return gitdiff.pair_renames(changes, functools.partial(_read_or_empty, repo), final_line=GIT_FINAL_LINE)


def tree_changes(repo, commit) -> list[gitdiff.Change]:
    """The files a commit changes against its first parent (all of them for a root commit), in the
    tree diff's order, renames not yet paired."""
    from pygit2.enums import DiffOption

    flags = DiffOption.INCLUDE_TYPECHANGE
    if commit.parent_ids:
        diff = repo[commit.parent_ids[0]].tree.diff_to_tree(commit.tree, flags)
    else:
        diff = commit.tree.diff_to_tree(flags=flags, swap=True)  # the root commit adds every file
    return [_change(delta, i) for i, delta in enumerate(diff.deltas)]


@dataclass
class _Context:
    repo: object
    options: MiningOptions
    rules: mining_filters.FilterPreset
    base: dict
    subject: str
    abbrev: object
    cache: RepoCache
    count_tokens: object
    diffs: object = None  # ahead.Made: what a helper made for this commit


def _read_or_empty(repo, oid: str) -> bytes:
    try:
        return repo.odb.read(oid)[1]
    except (KeyError, ValueError):
        return b""  # a missing object (partial clone) pairs with nothing; its row reports it


def _side(file) -> gitdiff.Side:
    raw = file.raw_path
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError:
        path = None
    return gitdiff.Side(path, raw, str(file.id), file.mode)


def _change(delta, index: int) -> gitdiff.Change:
    status = delta.status_char()
    old = None if status == "A" else _side(delta.old_file)
    new = None if status == "D" else _side(delta.new_file)
    return gitdiff.Change(status, old, new, index=index)


_MISSING = ahead.MISSING
_CHANGE_NAMES = {"A": "added", "D": "deleted", "R": "renamed", "M": "modified", "T": "modified"}


def _mine_file(change: gitdiff.Change, ctx: _Context) -> tuple[str, dict | str]:
    """(path, record) for one changed file, or (path, reason it is dropped)."""
    import pygit2

    old, new = change.old, change.new
    kind = _CHANGE_NAMES[change.status]
    side = new or old
    if side.path is None or (old is not None and old.path is None):
        return side.raw.decode("utf-8", errors="replace"), "file: path not UTF-8"
    path = side.path
    modes = {s.mode for s in (old, new) if s is not None}
    if _SUBMODULE in modes:
        return path, "file: submodule"
    if _LINK in modes:
        return path, "file: symlink"
    language = language_of(path)
    reason = mining_filters.path_reason(ctx.rules, language, path, kind)
    if reason:
        return path, reason

    blobs = []
    for item in (old, new):
        if item is None:
            blobs.append(None)
            continue
        try:
            blob = ctx.cache.blob(ctx.repo, item.oid, ctx.options.max_file_bytes)
        except (KeyError, ValueError, pygit2.GitError):
            return path, "file: object missing (partial clone?)"
        if blob is None:
            return path, "file: huge"
        blobs.append(blob)
    before, after = [
        None if side is None else ctx.cache.text(side.oid, blob)
        for side, blob in zip((old, new), blobs, strict=True)
    ]
    if before is _BINARY or after is _BINARY:
        return path, "file: binary"
    if before is _NOT_UTF8 or after is _NOT_UTF8:
        return path, "file: not UTF-8"
    reason = mining_filters.content_reason(ctx.rules, path, before, after, ctx.subject)
    if reason:
        return path, reason
    options = ctx.options
    pair = options.pair_tokens
    if pair is not None:
        count = ctx.count_tokens(octopack_pair_text(before or "", after or ""))
        low, high = pair
        if count < low or (high and count > high):
            return path, f"file: before + after outside {low}-{high or 'any'} tokens"

    limit = options.token_limit
    if limit is not None and _prompt_over(path, before, after, ctx, limit):
        return path, "file: too many tokens"

    crop_start = None
    shown = change
    old_side, new_side = blobs  # what libgit2 diffs: the blobs, or the cropped texts
    if options.crop_context is not None and before is not None and after is not None:
        before, after, crop_start = crop_to_change(before, after, options.crop_context)
        old_side, new_side = before.encode(), after.encode()
        shown = replace(
            change,
            old=replace(old, oid=str(pygit2.hash(old_side))),
            new=replace(new, oid=str(pygit2.hash(new_side))),
        )
    hunks = _MISSING
    if ctx.diffs is not None and crop_start is None and old is not None and new is not None:
        hunks = ctx.diffs.hunks(old.oid, new.oid)
    if hunks is _MISSING:
        hunks = gitdiff.hunks_of(old_side, new_side)
    if hunks is None:
        return path, "file: rename without edits" if kind == "renamed" else "file: no text change"
    full = gitdiff.header(shown, ctx.abbrev, True) + hunks
    sample_hunks = bare_headers(hunks)
    base = ctx.base
    try:
        as_sample = DiffSample(path, before, base["message"], sample_hunks)
        prompt, completion = as_sample.prompt(), as_sample.completion()
        sample = prompt + completion  # DiffSample.text(), without building the prompt twice
    except FormatError:
        return path, "file: cannot be written as a sample"
    if limit is not None and ctx.count_tokens(sample) > limit:
        return path, "file: too many tokens"
    if options.verify and not hunks_apply(before or "", sample_hunks, after or ""):
        return path, "file: diff does not apply"  # never seen; checked so a bad row can never slip out
    row = dict(base)
    row.update(
        path=path,
        old_path=old.path if old is not None else None,
        change=kind,
        language=language,
        before=before,
        after=after,
        diff=full,
        sample=sample,
        prompt=prompt,
        completion=completion,
        crop_start=crop_start,
    )
    return path, {column: row[column] for column in COLUMNS}


def _prompt_over(path: str, before: str | None, after: str | None, ctx: _Context, limit: int) -> bool:
    """True when the row is sure to be dropped for its tokens before its diff is made: the sample is
    the prompt (name, file before, message) then the diff, and with ``chars/4`` the prompt alone can be
    over the limit. Only then, so every drop keeps the reason it had: an unchanged file still reads
    "no text change", a sample that cannot be written says so (its diff never holds a tag line)."""
    if ctx.options.tokenizer != mining_filters.CHARS_PER_TOKEN or ctx.options.crop_context is not None:
        return False
    if (before or "") == (after or ""):
        return False
    try:
        prompt = DiffSample(path, before, ctx.base["message"], "").prompt()
    except FormatError:
        return False
    return ctx.count_tokens(prompt) > limit


def octopack_pair_text(before: str, after: str) -> str:
    from editlm.data.mining.octopack import pair_text

    return pair_text(before, after)


_HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_HUNK_HEADER_BYTES = re.compile(_HUNK_HEADER.pattern.encode())


def _line_offset(text, start: int, lines: int, newline) -> int:
    """Offset of the line ``lines`` lines after the line starting at ``start`` (-1: past the end)."""
    at = start
    for _ in range(lines):
        at = text.find(newline, at)
        if at < 0:
            return -1
        at += 1
    return at


def _locate(text, block, start: int, lines: int, newline) -> int:
    """Offset of the line ``lines`` lines after ``start`` (a line start) when ``block`` is written
    there, else -1.

    ``block`` is searched for (C speed) instead of splitting the file into lines: the first occurrence
    at or after ``start`` that is ``lines`` newlines further and at a line start is the place; an
    occurrence further than that line proves the block is not there.
    """
    if not block:
        return _line_offset(text, start, lines, newline)
    seen, counted, found = 0, start, start - 1  # newlines in text[start:counted]
    while True:
        found = text.find(block, found + 1)
        if found < 0:
            return -1
        seen += text.count(newline, counted, found)
        counted = found
        if seen > lines:
            return -1
        if seen == lines:  # in the right line: the block must start at its start
            return found if found == start or text[found - 1 : found] == newline else -1


def hunks_apply(before: str | bytes, hunks: str | bytes, after: str | bytes) -> bool:
    """True when the ``@@`` sections turn ``before`` into ``after`` exactly, line counts included.

    The row check, made cheap: rather than applying the diff line by line
    (``editlm.edits.diff.apply_diff``, a general applier with fuzz and offsets, cost a third of the
    mining time) it compares ``after``, in place, with the unchanged runs of ``before`` and the hunks'
    new lines, placing each hunk at the line its header names by searching for the hunk's old lines
    (:func:`_locate`). Nothing splits the files into lines.
    """
    if isinstance(hunks, bytes):
        newline, marker, header = b"\n", b"\\", _HUNK_HEADER_BYTES
        old = before.encode() if isinstance(before, str) else before
        new = after.encode() if isinstance(after, str) else after
    else:
        newline, marker, header = "\n", "\\", _HUNK_HEADER
        old = before.decode() if isinstance(before, bytes) else before
        new = after.decode() if isinstance(after, bytes) else after
    lines = hunks.split(newline)
    if lines and not lines[-1]:
        lines.pop()
    po = pa = pb = i = done = 0  # offset and line of before not yet used, next line of after, its offset
    total = len(lines)
    ended = False  # a side's last line without newline was seen: no hunk may follow
    at_sign = header.pattern[:2]
    while i < total:
        match = header.match(lines[i])
        if not match or ended:
            return False
        old_len = int(match[2]) if match[2] is not None else 1
        new_len = int(match[4]) if match[4] is not None else 1
        sa = int(match[1]) - (1 if old_len else 0)
        sb = int(match[3]) - (1 if new_len else 0)
        if sa < pa or sb < pb or sa - pa != sb - pb:
            return False
        i += 1
        old_lines, new_lines = [], []
        old_open = new_open = True  # False once that side's last line lacked its newline
        while i < total and not lines[i].startswith(at_sign):
            line = lines[i]
            marked = i + 1 < total and lines[i + 1].startswith(marker)
            body = line[1:] if marked else line[1:] + newline
            tag = line[:1]
            if tag == line[:0] or tag not in (" ", "-", "+", b" ", b"-", b"+"):
                return False
            if tag in (" ", "-", b" ", b"-"):
                if not old_open:
                    return False
                old_lines.append(body)
                old_open = not marked
            if tag in (" ", "+", b" ", b"+"):
                if not new_open:
                    return False
                new_lines.append(body)
                new_open = not marked
            i += 2 if marked else 1
        if len(old_lines) != old_len or len(new_lines) != new_len:
            return False
        block = newline[:0].join(old_lines)
        at = _locate(old, block, po, sa - pa, newline)
        if at < 0:
            return False
        for piece in (old[po:at], newline[:0].join(new_lines)):  # after is never rebuilt whole
            if not new.startswith(piece, done):
                return False
            done += len(piece)
        po, pa, pb = at + len(block), sa + old_len, sb + new_len
        if not old_open and po != len(old):
            return False  # "no newline at end of file" on a line that is not the last
        if not new_open:
            ended = True
            if po != len(old):
                return False  # after's last line, yet before goes on unchanged
    return len(new) - done == len(old) - po and new.endswith(old[po:])


def is_binary(data: bytes) -> bool:
    """Git's own rule (``buffer_is_binary``): a NUL byte among the first 8000 bytes. Everything else is
    diffed as text (libgit2's extra control-character heuristic is switched off with FORCE_TEXT), so
    editlm and ``git diff`` agree on what is binary."""
    return b"\0" in data[:8000]


def file_patch(
    old: bytes | str | None,
    new: bytes | str | None,
    old_path: str,
    new_path: str,
    similarity: int | None = None,
) -> tuple[str, str] | None:
    """(full git diff, diff from its first ``@@`` with bare hunk headers), or None when no line changed.

    ``old``/``new`` are bytes or str (None: the file does not exist on that side); the texts must be
    UTF-8. ``similarity`` (percent) marks a rename. Both files get mode 100644 and ids abbreviated to 7.
    """
    import pygit2

    old = old.encode() if isinstance(old, str) else old
    new = new.encode() if isinstance(new, str) else new
    hunks = gitdiff.hunks_of(old, new)
    if hunks is None:
        return None
    sides = [
        None if data is None else gitdiff.Side(p, p.encode(), str(pygit2.hash(data)), 0o100644)
        for data, p in ((old, old_path), (new, new_path))
    ]
    status = "R" if similarity is not None else "A" if old is None else "D" if new is None else "M"
    score = similarity * gitdiff.MAX_SCORE // 100 if similarity is not None else None
    change = gitdiff.Change(status, sides[0], sides[1], score)
    return gitdiff.header(change, gitdiff.plain_abbrev, True) + hunks, bare_headers(hunks)


def bare_headers(hunks: str) -> str:
    """Drop git's function context after each hunk header: ``@@ -1,3 +1,4 @@ def f():`` becomes
    ``@@ -1,3 +1,4 @@``. Only header lines start with ``@@`` (body lines start with `` +-\\``), so
    finding them with ``str.find`` is exact, and several times faster than a multiline regex."""
    pieces = []
    start = 0  # a header line starts here
    while True:
        close = hunks.find(" @@", start + 2) + 3
        newline = hunks.find("\n", start)
        pieces.append(hunks[start:close])
        following = hunks.find("\n@@ ", newline)
        if following < 0:
            pieces.append(hunks[newline:])
            return "".join(pieces)
        pieces.append(hunks[newline : following + 1])
        start = following + 1


def crop_to_change(before: str, after: str, context: int) -> tuple[str, str, int]:
    """Both files cut to one window: the changed lines plus ``context`` unchanged lines either side.

    Seed 001's truncation experiment. One window from the first to the last changed line keeps the code
    between two changes, so the cropped file still reads as code. Returns (before, after, first line kept).
    """
    from editlm.edits.diff import split_lines

    a, b = split_lines(before), split_lines(after)
    prefix = 0
    limit = min(len(a), len(b))
    while prefix < limit and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    start = max(0, prefix - context)
    keep_tail = max(0, suffix - context)
    return "".join(a[start : len(a) - keep_tail]), "".join(b[start : len(b) - keep_tail]), start


# --------------------------------------------------------------------------- the public API


def iter_records(
    path: str | Path,
    options: MiningOptions | None = None,
    *,
    rev: str = "HEAD",
    skipped: Counter | None = None,
    helper: bool | None = None,
) -> Iterator[dict]:
    """Yield the records of every commit reachable from ``rev`` in the repository at ``path``.

    ``skipped``, when given, counts dropped commits and files by reason. ``helper``: make the diffs
    ahead in a helper process (:mod:`editlm.data.mining.ahead`; the same rows); None decides by the
    cores and the history's length (:func:`editlm.data.mining.ahead.helper_wanted`). Raises
    :class:`MiningError` for a path that is not a repository or a revision that is not a commit.
    """
    options = options or MiningOptions()
    repo = open_repository(path)
    name = repository_name(repo, path)
    licenses = LicenseCache()
    commits = list_commits(repo, rev)
    if not commits and skipped is not None:
        skipped["repository: no commits"] += 1
    if helper is None:
        helper = ahead.helper_wanted(len(commits))
    made = ahead.start(repo.path, commits, options) if helper and commits else None
    try:
        for index, commit_id in enumerate(commits):
            diffs = made.lookup(index) if made is not None else None
            result = mine_commit(repo, commit_id, options, name, licenses, diffs)
            if skipped is not None:
                if result.reason:
                    skipped[result.reason] += 1
                for _, reason in result.file_skips:
                    skipped[reason] += 1
            yield from result.rows
    finally:
        if made is not None:
            made.close()
