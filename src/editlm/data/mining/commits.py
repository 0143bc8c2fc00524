"""Git history into diff-model records: one record per changed file of each non-merge commit.

All git access goes through pygit2 (libgit2 in-process): a tree-to-tree diff per commit gives the changed
files, ``Diff.find_similar`` pairs renames, and libgit2 writes each file's patch from the two blobs
(byte for byte what ``git show -M`` prints, apart from libgit2's own rename similarity score). No ``git``
subprocess is started, which is why this is several times faster than PyDriller on the same output
(``benchmarks/mining_speed.py``).

A record (:data:`COLUMNS`) holds the file before and after, the full unified diff as git prints it,
and ``sample``: the diff-model training text ``<NME> path\\n<BEF> before\\n<MSG> message\\n<DFF> @@ ...``
(:class:`editlm.edits.diff_model.DiffSample`), whose diff starts at its first ``@@`` and carries bare
hunk headers (git's function-name suffix dropped) so that a prompt ``<DFF> @@ -1,3 +1,9 @@`` reads like
training data. Every record's sample diff is checked to turn ``before`` into ``after`` with
:func:`editlm.edits.diff.apply_diff` before it is emitted (``MiningOptions(verify=False)`` skips the check
for a third less time; the construction itself is property-tested).

Anything that cannot become a record is dropped with a reason (``commit: merge``, ``file: binary``, ...)
so that jobs can count drops by reason; nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from editlm.data.mining import filters as mining_filters
from editlm.data.mining import licenses as mining_licenses
from editlm.data.mining.languages import language_of
from editlm.edits.diff import DiffError, apply_diff, split_lines
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
_PLAIN_MODES = {0, 0o100644}  # a patch made from two blobs writes these modes, as git would


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
    verify: bool = True  # apply every row's diff with the edit core before emitting it (~1/3 of the time)

    def __post_init__(self) -> None:
        mining_filters.preset(self.filter)  # raises ValueError for an unknown preset
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError("max_tokens must be positive")
        if self.crop_context is not None and self.crop_context < 0:
            raise ValueError("crop_context must be >= 0")

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.rules.default_max_tokens

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
    """A pygit2 Repository for a working tree or a bare repository."""
    import pygit2

    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError, ValueError) as exc:
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


class LicenseCache:
    """The repository license at a commit, each license blob detected once per process."""

    def __init__(self) -> None:
        self._by_blob: dict = {}

    def license_at(self, repo, tree) -> str | None:
        ids, found = [], False
        for entry in tree:
            if entry.type_str != "blob" or not mining_licenses.is_license_file(entry.name):
                continue
            found = True
            key = entry.id
            if key not in self._by_blob:
                data = repo[key].data
                text = data.decode("utf-8", errors="replace")
                self._by_blob[key] = mining_licenses.detect_license(text)
            ids.append(self._by_blob[key])
        return mining_licenses.combine(ids, found)


# --------------------------------------------------------------------------- one commit


def mine_commit(
    repo, commit_id: str, options: MiningOptions, name: str, licenses: LicenseCache
) -> CommitResult:
    """The records of one commit, or the reason it is dropped (see module docstring)."""
    from pygit2.enums import DiffFind, DiffOption

    commit = repo[commit_id]
    result = CommitResult(str(commit.id))
    parents = commit.parent_ids
    if len(parents) > 1:
        result.reason = "commit: merge"
        return result
    try:
        message = commit.raw_message.decode(commit.message_encoding or "utf-8").strip()
    except (UnicodeDecodeError, LookupError):
        result.reason = "commit: message not decodable"
        return result
    rules = options.rules
    reason = mining_filters.message_reason(rules, message, result.commit, options.seed)
    if reason:  # before any diff: the strict presets drop most commits on their message alone
        result.reason = reason
        return result
    tree = commit.tree
    if parents:
        diff = repo[parents[0]].tree.diff_to_tree(tree, DiffOption.FORCE_TEXT, 3, 0)
        diff.find_similar(flags=DiffFind.FIND_RENAMES)
    else:
        diff = tree.diff_to_tree(flags=DiffOption.FORCE_TEXT, swap=True)  # the root commit adds every file
    deltas = list(diff.deltas)
    if not deltas:
        result.reason = "commit: empty"
        return result
    license_id = licenses.license_at(repo, tree)
    reason = mining_filters.commit_reason(rules, license_id, len(deltas))
    if reason:
        result.reason = reason
        return result

    tz = timezone(timedelta(minutes=commit.commit_time_offset))
    base = {
        "repository": name,
        "commit": result.commit,
        "parent": str(parents[0]) if parents else None,
        "date": datetime.fromtimestamp(commit.commit_time, tz).isoformat(),
        "license": license_id,
        "message": message,
    }
    limit = options.token_limit
    count_tokens = mining_filters.token_counter(options.tokenizer) if limit is not None else None
    for index, delta in enumerate(deltas):
        path, row = _mine_file(repo, diff, index, delta, options, rules, base, limit, count_tokens)
        if isinstance(row, str):
            result.file_skips.append((path, row))
        else:
            result.rows.append(row)
    return result


def _path(file) -> str | None:
    try:
        return file.raw_path.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mine_file(repo, diff, index, delta, options, rules, base, limit, count_tokens) -> tuple[str, dict | str]:
    """(path, record) for changed file ``index`` of ``diff``, or (path, reason it is dropped)."""
    import pygit2

    status = delta.status_char()
    old_path, new_path = _path(delta.old_file), _path(delta.new_file)
    path = new_path if status != "D" else old_path
    if path is None or old_path is None:
        shown = delta.new_file.raw_path.decode("utf-8", errors="replace")
        return shown, "file: path not UTF-8"
    modes = {delta.old_file.mode, delta.new_file.mode}
    if _SUBMODULE in modes:
        return path, "file: submodule"
    if _LINK in modes:
        return path, "file: symlink"
    change = {"A": "added", "D": "deleted", "R": "renamed"}.get(status, "modified")
    language = language_of(path)
    reason = mining_filters.path_reason(rules, language, deleted=change == "deleted")
    if reason:
        return path, reason

    contents: list[bytes | None] = []
    for file, present in ((delta.old_file, change != "added"), (delta.new_file, change != "deleted")):
        if not present:
            contents.append(None)
            continue
        try:
            _, size = repo.odb.read_header(file.id)
            data = repo.odb.read(file.id)[1] if size <= options.max_file_bytes else None
        except (KeyError, ValueError, pygit2.GitError):
            return path, "file: object missing (partial clone?)"
        if data is None:
            return path, "file: huge"
        contents.append(data)  # the raw bytes: cheaper than a Blob object and its .data copy
    old_data, new_data = contents
    if any(data is not None and is_binary(data) for data in contents):
        return path, "file: binary"
    try:
        before = old_data.decode("utf-8") if old_data is not None else None
        after = new_data.decode("utf-8") if new_data is not None else None
    except UnicodeDecodeError:
        return path, "file: not UTF-8"
    reason = mining_filters.content_reason(rules, before, after)
    if reason:
        return path, reason

    crop_start = None
    similarity = delta.similarity if change == "renamed" else None
    if options.crop_context is not None and before is not None and after is not None:
        before, after, crop_start = crop_to_change(before, after, options.crop_context)
        patch = file_patch(before, after, old_path, new_path, similarity)
    elif modes <= _PLAIN_MODES:
        # From the bytes already read: the same text as git's, without reading the blobs again.
        patch = file_patch(old_data, new_data, old_path, new_path, similarity)
    else:
        patch = _split_patch(diff[index].data.decode("utf-8"))  # git's own header for mode changes
    if patch is None:
        return path, "file: rename without edits" if change == "renamed" else "file: no text change"
    full, hunks = patch
    try:
        as_sample = DiffSample(path, before, base["message"], hunks)
        sample = as_sample.text()
    except FormatError:
        return path, "file: cannot be written as a sample"
    if limit is not None and count_tokens(sample) > limit:
        return path, "file: too many tokens"
    if options.verify:
        try:
            applied = apply_diff(before or "", hunks)
        except DiffError:
            applied = None
        if applied != (after or ""):
            return path, "file: diff does not apply"  # never seen; checked so a bad row can never slip out
    row = dict(base)
    row.update(
        path=path,
        old_path=old_path if change != "added" else None,
        change=change,
        language=language,
        before=before,
        after=after,
        diff=full,
        sample=sample,
        prompt=as_sample.prompt(),
        completion=as_sample.completion(),
        crop_start=crop_start,
    )
    return path, {column: row[column] for column in COLUMNS}


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

    ``old``/``new`` are bytes or str (None: the file does not exist on that side); the
    texts must be UTF-8. ``similarity`` marks a rename, whose git header lines libgit2 does not write
    for a patch made from two blobs, so they are put back here as ``git diff -M`` prints them.
    """
    import pygit2
    from pygit2.enums import DiffOption

    old = old.encode() if isinstance(old, str) else old
    new = new.encode() if isinstance(new, str) else new
    patch = pygit2.Patch.create_from(
        old, new, old_path, new_path, flag=DiffOption.FORCE_TEXT, context_lines=3, interhunk_lines=0
    )
    full = patch.data.decode("utf-8")
    if similarity is not None:
        first, _, rest = full.partition("\n")
        full = (
            f"{first}\nsimilarity index {similarity}%\nrename from {old_path}\nrename to {new_path}\n{rest}"
        )
    return _split_patch(full)


def _split_patch(full: str) -> tuple[str, str] | None:
    at = full.find("\n@@")
    if at < 0:
        return None  # no hunk: a pure rename, a mode change, an empty file, or a binary patch
    return full, bare_headers(full[at + 1 :])


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
) -> Iterator[dict]:
    """Yield the records of every commit reachable from ``rev`` in the repository at ``path``.

    ``skipped``, when given, counts dropped commits and files by reason. Raises :class:`MiningError`
    for a path that is not a repository or a revision that is not a commit.
    """
    options = options or MiningOptions()
    repo = open_repository(path)
    name = repository_name(repo, path)
    licenses = LicenseCache()
    commits = list_commits(repo, rev)
    if not commits and skipped is not None:
        skipped["repository: no commits"] += 1
    for commit_id in commits:
        result = mine_commit(repo, commit_id, options, name, licenses)
        if skipped is not None:
            if result.reason:
                skipped[result.reason] += 1
            for _, reason in result.file_skips:
                skipped[reason] += 1
        yield from result.rows
