"""The fork server behind :mod:`editlm.evaluate.sandbox`. Standard library only.

Started once per worker as ``[unshare --net --mount --] python -s -S -P _sandbox_server.py CONFIG``
with only PATH, LANG and PYTHONHASHSEED=0 in its environment,
so every program it runs inherits a network namespace with nothing but loopback, a private mount
namespace (fresh tmpfs on /tmp, /var/tmp, /dev/shm, /run/lock) and an isolated interpreter without
site-packages. Starting an interpreter costs ~16 ms; forking this warm one costs ~1 ms, which is
what makes tens of thousands of pass@k programs affordable.

Per job the server forks once: the child is PID 1 of a new PID namespace; it drops to an
unprivileged uid of its own, sets rlimits, enters a private working directory and runs the code.
When it ends (or the time limit kills it), the kernel kills everything left in the namespace, so
daemons, grandchildren with their own session and processes ignoring SIGTERM all go with it.
(The price of being PID 1: orphans are reaped only at the end, and a program cannot kill itself
with a signal it has no handler for.) Without PID namespaces: a process group, killed whole.

Protocol on stdin/stdout: 4-byte big-endian length + JSON, one request -> one reply.
"""

import ctypes
import gc
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MNT_DETACH = 2, 4, 4096, 16384, 2
PR_SET_PDEATHSIG = 1
TAIL = 4096
# Isolated like ``-I`` (no site-packages, no user site, no script directory on sys.path) but reading
# the environment, which we write ourselves, so that PYTHONHASHSEED=0 makes set order reproducible.
INTERPRETER_FLAGS = ("-s", "-S", "-P")
# Directories anyone may write to on Debian-like systems: each gets a private tmpfs.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
# The base interpreter, not a virtual environment's link to it: programs need only the standard
# library, and a venv (a checkout under /tmp, say) may sit under a directory the private tmpfs hides.
EXECUTABLE = os.path.realpath(sys.executable)
# Common stdlib modules, imported once here so forked programs find them warm.
WARM = (
    "math re collections itertools functools heapq bisect string typing hashlib random decimal "
    "fractions statistics operator copy json datetime threading dataclasses enum textwrap"
)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _read_exact(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(obj):
    data = json.dumps(obj).encode()
    _write_all(struct.pack(">I", len(data)) + data)


def _write_all(data):
    view = memoryview(data)
    while view:
        n = os.write(1, view)
        view = view[n:]


def _mount_tmpfs(path, size_mb):
    if not os.path.isdir(path):
        return False
    opts = f"size={size_mb}m,mode=1777".encode()
    return _libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts) == 0


def _reachable(path):
    """Can any user reach ``path`` (every directory above it searchable by others)?"""
    parts = os.path.realpath(path).split("/")[1:]
    return all(os.stat("/" + "/".join(parts[:i])).st_mode & 0o001 for i in range(1, len(parts)))


def _expose(path, stash_root):
    """Make ``path`` reachable for unprivileged users in this mount namespace only.

    The interpreter often lives under a 0700 directory (``/root/.pyenv``); the sandbox uid must still
    read the standard library. The blocking directory is covered with a tmpfs that holds only the
    branch leading to ``path`` (bind-mounted back), which also hides the rest of that directory.
    """
    for _ in range(8):
        parts = os.path.realpath(path).split("/")[1:]
        blocked = None
        for i in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:i])
            if not os.stat(ancestor).st_mode & 0o001:
                blocked, keep = ancestor, "/" + "/".join(parts[: i + 1])
                break
        if blocked is None:
            return True
        stash = tempfile.mkdtemp(dir=stash_root)
        _check(_libc.mount(keep.encode(), stash.encode(), None, MS_BIND | MS_REC, None), "bind")
        _check(_libc.mount(b"tmpfs", blocked.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755"), "tmpfs")
        target = os.path.join(blocked, os.path.basename(keep))
        if os.path.isdir(stash):
            os.mkdir(target, 0o755)
        else:
            open(target, "w").close()
        _check(_libc.mount(stash.encode(), target.encode(), None, MS_BIND | MS_REC, None), "bind back")
        _libc.umount2(stash.encode(), MNT_DETACH)
        os.rmdir(stash)
    return False


class Server:
    def __init__(self, config):
        self.config = config
        self.max_output = int(config.get("max_output", 65536))
        self.uid = None
        self.scratch_root = None
        self.private_tmp = False
        self.pidns = False
        self.features = {}

    # ------------------------------------------------------------------ set-up
    def setup(self):
        os.umask(0o077)
        if self.config.get("private_tmp") and os.geteuid() == 0:
            stdlib = os.path.dirname(os.__file__)
            under_tmp = any(x.startswith(p + "/") for x in (EXECUTABLE, stdlib) for p in WORLD_WRITABLE)
            if not under_tmp:
                size = int(self.config.get("tmpfs_mb", 512))
                existing = [p for p in WORLD_WRITABLE if os.path.isdir(p) and not os.path.islink(p)]
                self.private_tmp = "/tmp" in existing and all([_mount_tmpfs(p, size) for p in existing])
        paths = {os.path.dirname(os.__file__), EXECUTABLE}
        readable = all(_reachable(p) for p in paths)
        if self.private_tmp and not readable:  # own mount namespace: we may reshape it
            readable = True
            for path in paths:
                try:
                    readable = _expose(path, "/tmp") and readable
                except OSError:
                    readable = False
        self.scratch_root = tempfile.mkdtemp(prefix="editlm-sandbox-")
        os.chmod(self.scratch_root, 0o711)
        # An unprivileged uid of our own: its process count (RLIMIT_NPROC) is shared with nobody.
        if os.geteuid() == 0 and readable and self.config.get("drop_privileges", True):
            uid = 200000 + os.getpid()
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                    os._exit(0)
                except OSError:
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) == 0:
                self.uid = uid
        self.pidns = self.config.get("pid_namespace", True) and self._probe_pidns()
        for name in self.config.get("warm", WARM).split():
            try:
                __import__(name)
            except ImportError:
                pass
        # Long-lived objects out of the collector's sight: forked programs then copy fewer pages.
        gc.freeze()
        self.server_pid = os.getpid()
        self.features = {
            "pid": os.getpid(),
            "uid": self.uid,
            "pid_namespace": self.pidns,
            "private_tmp": self.private_tmp,
            "network_interfaces": _interfaces(),
        }

    def _probe_pidns(self):
        """Can we put each job's init in a PID namespace of its own, and come back for the next?"""
        try:
            self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
            for _ in range(2):
                _check(_libc.unshare(CLONE_NEWPID), "unshare")
                pid = os.fork()
                if pid == 0:
                    os._exit(0 if os.getpid() == 1 else 1)
                self._leave_pidns()
                _, status = os.waitpid(pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    return False
            return True
        except OSError:
            return False

    def _leave_pidns(self):
        _check(_libc.setns(self.own_pidns, CLONE_NEWPID), "setns")

    # ------------------------------------------------------------------ one job
    def run(self, req):
        start = time.monotonic()
        workdir = tempfile.mkdtemp(dir=self.scratch_root)
        try:
            if self.uid is not None:
                os.chown(workdir, self.uid, self.uid)
            os.chmod(workdir, 0o700)
            stdin_path = os.path.join(workdir, ".stdin")
            with open(stdin_path, "wb") as f:
                f.write(req.get("stdin", "").encode("utf-8", "surrogateescape"))
            return self._run_in(req, workdir, stdin_path, start)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_in(self, req, workdir, stdin_path, start):
        timeout = float(req.get("timeout", 5.0))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        if self.pidns:
            _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        try:
            pid = os.fork()
        except OSError:
            if self.pidns:
                self._leave_pidns()
            raise
        if pid != 0 and self.pidns:
            self._leave_pidns()
        if pid == 0:  # the program: PID 1 of its own namespace, so its exit ends every process in it
            try:
                os.close(out_r)
                os.close(err_r)
                os.close(st_r)
                self._program(req, workdir, stdin_path, out_w, err_w, st_w)
            except BaseException as exc:
                for fd in (st_w, 2):
                    try:
                        os.write(fd, f"setup-error {exc!r}\n".encode())
                    except OSError:
                        pass
            os._exit(71)
        os.close(out_w)
        os.close(err_w)
        os.close(st_w)
        pidfd = os.pidfd_open(pid)
        out, err = _Capture(self.max_output), _Capture(self.max_output)
        status_bytes = b""
        open_fds = {out_r: out, err_r: err, st_r: None}
        exited = False
        timed_out = False
        deadline = start + timeout
        while open_fds or not exited:
            wait = deadline - time.monotonic()
            if wait <= 0:
                timed_out = True
                break
            fds = list(open_fds) + ([] if exited else [pidfd]) + [0]
            ready, _, _ = select.select(fds, [], [], wait)
            for fd in ready:
                if fd == pidfd:
                    exited = True
                    if not self.pidns:  # no namespace: end the process group now
                        _killpg(pid)
                    continue
                if fd == 0:  # the harness went away (or wrote out of turn): stop everything
                    _kill(pid)
                    os.waitpid(pid, 0)
                    raise SystemExit(0)
                chunk = os.read(fd, 65536)
                if not chunk:
                    del open_fds[fd]
                    os.close(fd)
                elif fd == st_r:
                    status_bytes += chunk
                else:
                    open_fds[fd].add(chunk)
        if timed_out:
            _kill(pid)
        _, status = os.waitpid(pid, 0)
        if not self.pidns:
            _killpg(pid)
        os.close(pidfd)
        drain_until = time.monotonic() + 1.0
        for fd in list(open_fds):  # after a kill the namespace is empty: drain without blocking long
            try:
                while time.monotonic() < drain_until:
                    r, _, _ = select.select([fd], [], [], 0.2)
                    if not r:
                        break
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    if fd == st_r:
                        status_bytes += chunk
                    else:
                        open_fds[fd].add(chunk)
            finally:
                os.close(fd)
        wall = time.monotonic() - start
        returncode = None if timed_out else os.waitstatus_to_exitcode(status)
        info = status_bytes.decode(errors="replace")
        if info.startswith("setup-error"):
            err.add(f"sandbox setup failed: {info[len('setup-error') :].strip()}\n".encode())
        return {
            "timed_out": timed_out,
            "returncode": returncode,
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "wall": wall,
        }

    def _program(self, req, workdir, stdin_path, out_w, err_w, st_w):
        """The untrusted program: own session, unprivileged, limited, in its own directory."""
        os.setsid()
        fd = os.open(stdin_path, os.O_RDONLY)
        os.dup2(fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, st_w)
        os.closerange(st_w + 1, 65536)
        os.chdir(workdir)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        memory = int(req.get("memory_mb", 1024)) * 1024 * 1024
        cpu = int(float(req.get("timeout", 5.0))) + 1
        nproc = int(req.get("max_processes", 32))
        limits = [
            (resource.RLIMIT_AS, memory),
            (resource.RLIMIT_DATA, memory),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, int(req.get("max_file_mb", 64)) * 1024 * 1024),
            (resource.RLIMIT_NOFILE, int(req.get("max_open_files", 64))),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.uid is not None:
            limits.append((resource.RLIMIT_NPROC, nproc))
        else:  # the count is shared with the caller's own processes: leave them room
            limits.append((resource.RLIMIT_NPROC, _user_processes() + nproc))
        for which, value in limits:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8",
        }
        main = os.path.join(workdir, "main.py")
        with open(main, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(req["code"])
        os.set_inheritable(st_w, False)
        if req.get("fresh"):
            os.execve(EXECUTABLE, [EXECUTABLE, *INTERPRETER_FLAGS, "main.py"], env)
        os.environ.clear()
        os.environ.update(env)
        os.close(st_w)
        _exec_here(req["code"], main)


def _exec_here(code, path):
    """Run ``code`` as ``__main__`` of this (forked, pristine) interpreter, exiting like python does."""
    import builtins
    import threading
    import types

    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    sys.stdin = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    rc = 0
    try:
        exec(compile(code, path, "exec"), module.__dict__)
    except SystemExit as exc:
        rc = _exit_code(exc.code)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)  # without this frame
        rc = 1
    try:
        threading._shutdown()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(rc)


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except BaseException:
        pass
    return 1


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _user_processes():
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return count


def _interfaces():
    try:
        with open("/proc/net/dev") as f:
            return [line.split(":")[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return []


class _Capture:
    """The first ``limit`` bytes and the last few KB of a stream; the rest is counted, not kept."""

    def __init__(self, limit):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk):
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[:-TAIL]

    def text(self):
        head = self.head.decode("utf-8", errors="replace")
        if self.total <= len(self.head) + len(self.tail):
            return head + self.tail.decode("utf-8", errors="replace")
        skipped = self.total - len(self.head) - len(self.tail)
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n[... {skipped} bytes not kept ...]\n{tail}"


def main():
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    server = Server(config)
    server.setup()
    _send({"ready": True, **server.features})
    try:
        while True:
            head = _read_exact(0, 4)
            if head is None:
                break
            body = _read_exact(0, struct.unpack(">I", head)[0])
            if body is None:
                break
            req = json.loads(body)
            try:
                reply = server.run(req)
            except SystemExit:
                raise
            except BaseException as exc:  # keep serving: one broken job is one failed result
                reply = {"internal_error": f"{type(exc).__name__}: {exc}", "wall": 0.0}
            _send(reply)
    finally:
        shutil.rmtree(server.scratch_root, ignore_errors=True)


if __name__ == "__main__":
    main()
