"""The server behind :mod:`editlm.evaluate.sandbox`. Standard library only (plus the optional
``pyseccomp`` module, loaded by path before anything untrusted runs).

Started once per worker as ``[wrapper --] python -s -S -P _sandbox_server.py CONFIG``, where the
wrapper gives the server a network namespace with only loopback (``unshare --net --mount`` as
root, ``unshare --user --map-root-user --net --mount`` or bubblewrap without root).

Processes (every arrow is a fork; nothing here execs except ``fresh_interpreter`` programs):

    server (trusted: reads the jobs, holds the tests)
    |-- zygote: PID 1 of a PID namespace of its own, forked before the first job, so it never
    |   sees a test; it moves into a minimal root (the interpreter and /usr read-only, /dev with
    |   null, zero, random and urandom only, no host /tmp, /run or sockets) and per program:
    |   `-- init: PID 1 of a new PID namespace (the zygote unshares it, forks, and goes back to
    |       its own); joins the job's cgroup, makes mount, IPC and UTS namespaces (and, without
    |       root, a user namespace of its own), mounts a fresh size-limited tmpfs on /tmp and its
    |       own /proc, then reaps; when the program ends it reports how and exits, and the kernel
    |       kills whatever is left in the namespace
    |       `-- the program: own session, rlimits, a fresh uid (as root) or uid 1000 of its own
    |           user namespace, no capabilities, no_new_privs, seccomp filter
    `-- checker (per test job): runs the benchmark's ``check`` and calls the program's functions
        over two pipes, plain data only (:mod:`editlm.evaluate.channel`); its verdict goes to
        the server on a pipe the program never holds.

Ahead of demand: the zygote makes the next program's init and namespaces while the current
program runs, and that program's process drops its privileges and loads the seccomp filter
before its job comes; the server forks the next checker the same way (it reads its tests from
a pipe). A program is done when its init, having killed everything else in the namespace,
exits: the kernel's teardown of the namespaces (milliseconds of RCU grace periods) is nobody's
wait; the init is reaped later and its cgroup (one of :data:`CGROUP_POOL`) handed out again
only then.

Protocol with the harness on stdin/stdout: 4-byte big-endian length + JSON, one request -> one
reply, in order; the harness may send the next request before the reply (it is buffered). Server and zygote speak the same framing over a socket pair that also carries the
program's ends of the channel pipes (SCM_RIGHTS).
"""

import builtins
import ctypes
import gc
import json
import os
import platform
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP = 0x10000000, 0x20000000, 0x40000000, 0x02000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = (
    1024,
    2048,
    4096,
    16384,
    1 << 18,
    1 << 21,
)
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 36, 38, 47, 4
SYSCALLS = {"x86_64": {"pivot_root": 155, "capset": 126}, "aarch64": {"pivot_root": 41, "capset": 91}}
TAIL = 4096
SANDBOX_UID = 1000  # the program's uid inside its own user namespace (no root)
INTERPRETER_FLAGS = ("-s", "-S", "-P")
EXECUTABLE = os.path.realpath(sys.executable)
PREFIX = os.path.realpath(sys.base_prefix)
# Imported by the zygote, so that programs start with them loaded. Not random, statistics or
# threading: they register at-fork hooks (a reseed from urandom, a reset of the thread table) that
# every later fork runs, and each program costs two forks of the zygote (~0.7 ms of CPU here per
# job, for the few programs that import them ~0.5 ms once). The server (parent of the tests'
# processes) imports only what HumanEval's tests and prompts import.
WARM = (
    "math re collections itertools functools heapq bisect string typing hashlib decimal "
    "fractions operator copy json datetime dataclasses enum textwrap base64"
)
CHECKER_WARM = "typing math copy string"
SECCOMP_MODE_FILTER, PR_SET_SECCOMP = 2, 22
# Denied to programs (EPERM) by the seccomp filter: new namespaces, mounts, tracing other processes,
# the kernel keyring, eBPF, perf, module and kexec loading, io_uring (which bypasses seccomp).
DENIED_SYSCALLS = (
    "unshare setns mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick move_mount open_tree "
    "mount_setattr ptrace process_vm_readv process_vm_writev kcmp keyctl add_key request_key bpf "
    "perf_event_open userfaultfd kexec_load kexec_file_load init_module finit_module delete_module "
    "open_by_handle_at name_to_handle_at swapon swapoff reboot syslog acct quotactl lookup_dcookie "
    "io_uring_setup io_uring_enter io_uring_register sethostname setdomainname settimeofday "
    "clock_settime clock_adjtime adjtimex iopl ioperm vhangup personality"
).split()
NAMESPACE_FLAGS = (
    CLONE_NEWNS,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
    CLONE_NEWCGROUP,
)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
channel = None  # editlm/evaluate/channel.py, loaded by path in main()


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None, what="mount"):
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"{what} {target}")


def _write_file(path, text, dir_fd=None):
    fd = os.open(path, os.O_WRONLY, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read_file(path, dir_fd=None):
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- framing


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(obj, fd=1):
    data = json.dumps(obj).encode()
    _write_all(fd, struct.pack(">I", len(data)) + data)


def _sock_send(sock, obj, fds=()):
    data = json.dumps(obj).encode()
    head = struct.pack(">I", len(data))
    if fds:
        socket.send_fds(sock, [head], list(fds))
    else:
        sock.sendall(head)
    sock.sendall(data)


def _sock_recv(sock):
    """(message or None at EOF, fds that came with it)."""
    head, fds, _, _ = socket.recv_fds(sock, 4, 4)
    while head and len(head) < 4:
        more = sock.recv(4 - len(head))
        if not more:
            return None, fds
        head += more
    if not head:
        return None, fds
    (size,) = struct.unpack(">I", head)
    body = b""
    while len(body) < size:
        more = sock.recv(min(size - len(body), 1 << 20))
        if not more:
            return None, fds
        body += more
    return json.loads(body), fds


# ---------------------------------------------------------------------- capabilities, seccomp


def _has_cap_sys_admin():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 21))
    return False


def _full_uid_map():
    with open("/proc/self/uid_map") as f:
        return f.read().split() == ["0", "0", "4294967295"]


def _probe_userns():
    """'' if a child may make the user and PID namespaces each program gets, else why not."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0 if _libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS) == 0 else ctypes.get_errno()
        os.write(w, str(code).encode())
        os._exit(0)
    os.close(w)
    answer = os.read(r, 16).decode() or "-1"
    os.close(r)
    os.waitpid(pid, 0)
    err = int(answer)
    return (
        ""
        if err == 0
        else f"cannot create a user namespace per program: {os.strerror(err) if err > 0 else 'probe died'}"
    )


def _map_self(inside, outside_uid, outside_gid):
    """After unshare(CLONE_NEWUSER): map one uid and gid (our own), the only map an unprivileged
    process may write."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{inside} {outside_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{inside} {outside_gid} 1")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities():
    """Empty the ambient, effective, permitted and inheritable sets (the bounding set first, by
    :func:`_drop_capabilities_and_uid`, while that is still allowed)."""
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    number = SYSCALLS.get(platform.machine(), {}).get("capset")
    if number is not None:
        _check(_libc.syscall(number, ctypes.byref(header), ctypes.byref(data)), "capset")


def _seccomp_filter(module_path):
    """A deny-list filter built with pyseccomp (a ctypes binding of libseccomp) and exported as
    libseccomp's BPF program (bytes), or (None, reason). Built in a child process: pyseccomp
    imports ctypes.util, subprocess, threading and random, whose at-fork hooks would otherwise
    run in every later fork of the server and the zygote."""
    if not module_path:
        return None, "pyseccomp not installed"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            bpf, info = _build_seccomp(module_path, w)
        except BaseException as exc:  # noqa: BLE001 - any failure means: no filter, said so in the features
            info = f"seccomp unavailable: {type(exc).__name__}: {exc}"
        os.write(w, b"\n" + info.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    bpf, _, info = data.rpartition(b"\n")
    info = info.decode(errors="replace") or "seccomp unavailable: the filter builder died"
    if not bpf or len(bpf) % 8 or not info.startswith("seccomp ("):
        return None, info
    return bpf, info


def _build_seccomp(module_path, fd):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_editlm_pyseccomp", module_path)
    seccomp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seccomp)
    filt = seccomp.SyscallFilter(seccomp.ALLOW)
    eperm = seccomp.ERRNO(1)
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(eperm, name)
        except (OSError, ValueError, RuntimeError):
            pass  # not a syscall on this architecture
    for flag in NAMESPACE_FLAGS:  # clone(2) with any CLONE_NEW* flag
        filt.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
    filt.add_rule(seccomp.ERRNO(38), "clone3")

    class _Pipe:
        def fileno(self):
            return fd

    filt.export_bpf(_Pipe())  # the program libseccomp's seccomp_load would install
    return None, "seccomp (libseccomp via pyseccomp)"


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _load_seccomp(program):
    """Install a BPF program made by libseccomp (after no_new_privs, as seccomp_load does)."""
    prog = _SockFprog(len(program) // 8, ctypes.cast(program, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


# ---------------------------------------------------------------------- cgroups


CGROUP_POOL = 4  # per server: the running program, the next one (ready), and ones being torn down


class _Cgroups:
    """One cgroup (v1 memory + pids, or v2). Each server has a few (:data:`CGROUP_POOL`), each
    given to one program at a time, and to the next only once everything of the last is gone
    (its init reaped): a program still being torn down never shares limits with a new one."""

    def __init__(self, name):
        self.dirs = {}  # controller -> (path, dir fd)
        self.version = None
        self.reason = ""
        self.limits = None  # the (memory, pids) last written: rewritten only when a job's differ
        self.oom_seen = None  # the OOM kill count when its last program was done
        try:
            self._create(name)
        except OSError as exc:
            self.close()
            self.reason = f"cgroups unavailable: {exc}"

    def _create(self, name):
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else ("",):
                    own[c] = path
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(v2):
            path = "/sys/fs/cgroup" + own.get("", "/").rstrip("/") + "/" + name
            os.mkdir(path, 0o755)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            self.dirs["unified"] = (path, fd)
            self.version = 2
            return
        for controller in ("memory", "pids"):
            base = f"/sys/fs/cgroup/{controller}"
            if controller not in own or not os.path.isdir(base):
                raise OSError(f"no cgroup v1 {controller} controller")
            path = base + own[controller].rstrip("/") + "/" + name
            os.mkdir(path, 0o755)
            self.dirs[controller] = (path, os.open(path, os.O_RDONLY | os.O_DIRECTORY))
        self.version = 1

    def describe(self):
        if not self.dirs:
            return None
        return f"cgroup v{self.version} (memory, pids)"

    def set_limits(self, memory_bytes, pids):
        if self.limits == (memory_bytes, pids):
            return
        self.limits = None  # until all are written
        if self.version == 2:
            fd = self.dirs["unified"][1]
            _write_file("memory.max", str(memory_bytes), fd)
            _write_file("memory.swap.max", "0", fd) if _exists("memory.swap.max", fd) else None
            _write_file("pids.max", str(pids), fd)
        else:
            fd = self.dirs["memory"][1]
            swap = _exists("memory.memsw.limit_in_bytes", fd)
            if swap:  # memory + swap may never be below memory: lift it, set memory, then lower it
                _write_file("memory.memsw.limit_in_bytes", "-1", fd)
            _write_file("memory.limit_in_bytes", str(memory_bytes), fd)
            if swap:
                _write_file("memory.memsw.limit_in_bytes", str(memory_bytes), fd)
            _write_file("pids.max", str(pids), self.dirs["pids"][1])
        self.limits = (memory_bytes, pids)

    def join(self):
        for _, fd in self.dirs.values():
            _write_file("cgroup.procs", "0", fd)

    def oom_kills(self):
        if not self.dirs:
            return 0
        if self.version == 2:
            text, key = _read_file("memory.events", self.dirs["unified"][1]), "oom_kill"
        else:
            text, key = _read_file("memory.oom_control", self.dirs["memory"][1]), "oom_kill"
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
        return 0

    def close(self):
        for path, fd in self.dirs.values():
            os.close(fd)
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = {}


def _exists(name, dir_fd):
    try:
        os.stat(name, dir_fd=dir_fd)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------- the minimal root


def _statvfs_flags(path):
    """Mount flags that a bind remount must keep (locked ones may not be cleared in a user ns)."""
    f = os.statvfs(path).f_flag
    pairs = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))  # fmt: skip
    return sum(ms for st, ms in pairs if f & st)


def _bind_ro(source, target):
    _mount(source, target, None, MS_BIND | MS_REC, what="bind")
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | _statvfs_flags(source)
    _mount(None, target, None, flags, what="remount read-only")


def _makedirs(root, path):
    full = root
    for part in path.strip("/").split("/"):
        full = os.path.join(full, part)
        if not os.path.isdir(full):
            os.mkdir(full, 0o755)
    return full


def build_root(new_root):
    """Make ``new_root`` (a fresh tmpfs) the minimal view programs get, then pivot into it."""
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), os.path.join(new_root, name))
        elif os.path.isdir(host):
            os.mkdir(os.path.join(new_root, name), 0o755)
            _bind_ro(host, os.path.join(new_root, name))
    if not (PREFIX == "/usr" or PREFIX.startswith("/usr/")):
        _bind_ro(PREFIX, _makedirs(new_root, PREFIX))
        # the interpreter's own site-packages: hidden (programs run without site anyway)
        lib = os.path.join(PREFIX, "lib")
        for entry in os.listdir(lib) if os.path.isdir(lib) else ():
            site = os.path.join(lib, entry, "site-packages")
            if entry.startswith("python") and os.path.isdir(site):
                _mount(
                    "tmpfs", new_root + site, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755"
                )
    etc = _makedirs(new_root, "/etc")
    if os.path.exists("/etc/ld.so.cache"):
        open(os.path.join(etc, "ld.so.cache"), "w").close()
        _bind_ro("/etc/ld.so.cache", os.path.join(etc, "ld.so.cache"))
    with open(os.path.join(etc, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n")
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n")
    dev = _makedirs(new_root, "/dev")
    for node in ("null", "zero", "random", "urandom"):
        open(os.path.join(dev, node), "w").close()
        _mount(f"/dev/{node}", os.path.join(dev, node), None, MS_BIND, what="bind")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("shm", "/tmp")):  # fmt: skip
        os.symlink(target, os.path.join(dev, name))
    os.mkdir(os.path.join(new_root, "tmp"), 0o1777)
    os.symlink("/tmp", os.path.join(_makedirs(new_root, "/var"), "tmp"))
    # /proc: the server's, so that each program may mount one of its own on top of it (the kernel
    # allows a new proc in a user namespace only where a fully visible one is already mounted)
    os.mkdir(os.path.join(new_root, "proc"), 0o555)
    _mount("/proc", os.path.join(new_root, "proc"), None, MS_BIND | MS_REC, what="bind")
    os.chdir(new_root)
    os.mkdir(".old", 0o700)
    number = SYSCALLS.get(platform.machine(), {}).get("pivot_root")
    if number is None:
        raise OSError(f"pivot_root: unknown architecture {platform.machine()}")
    _check(_libc.syscall(number, b".", b".old"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID, what="remount / read-only")


# ---------------------------------------------------------------------- the server


class Server:
    def __init__(self, config):
        self.config = config
        self.max_output = int(config.get("max_output", 65536))
        self.mode = "none"  # "root": fresh uids; "userns": a user namespace per program; "none"
        self.reason = ""
        self.cgroups = None
        self.seccomp = None
        self.seccomp_info = ""
        self.features = {}
        self.jobs = 0
        self.zygote_pid = None
        self.zsock = None
        self.spare_checker = None  # (pid, q_r, a_w, verdict_r, job_w): forked, waiting for a test job
        self.dying_checkers = []
        self.inbox = _Inbox(0)

    # ------------------------------------------------------------------ set-up
    def setup(self):
        os.umask(0o022)
        if os.geteuid() == 0 and _full_uid_map() and _has_cap_sys_admin():
            self.mode = "root"
        else:
            if not _has_cap_sys_admin():  # bubblewrap without root: make a user namespace of our own
                uid, gid = os.geteuid(), os.getegid()
                try:
                    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(user)")
                    _map_self(0, uid, gid)
                except OSError as exc:
                    self.reason = f"cannot create a user namespace: {exc}"
            if not self.reason:
                self.mode = "userns" if _has_cap_sys_admin() else "none"
                if self.mode == "none":
                    self.reason = "no CAP_SYS_ADMIN even in a user namespace of our own"
                else:
                    self.reason = _probe_userns()
                    if self.reason:
                        self.mode = "none"
        if self.mode == "root" and self.config.get("cgroups", True):
            self.cgroups = []
            for i in range(CGROUP_POOL):
                group = _Cgroups(f"editlm-sandbox-{os.getpid()}-{i}")
                if not group.dirs:
                    self.features["cgroup_reason"] = group.reason
                    for made in self.cgroups:
                        made.close()
                    self.cgroups = None
                    break
                self.cgroups.append(group)
        bpf, self.seccomp_info = _seccomp_filter(self.config.get("seccomp_module"))
        self.seccomp = ctypes.create_string_buffer(bpf, len(bpf)) if bpf else None
        _import_all(CHECKER_WARM)
        self.features.update(
            pid=os.getpid(),
            mode=self.mode,
            reason=self.reason,
            uid=("fresh per program" if self.mode == "root" else
                 f"{SANDBOX_UID} in a user namespace per program" if self.mode == "userns" else os.geteuid()),
            pid_namespace=self.mode != "none",
            private_tmp=self.mode != "none",
            network_interfaces=_interfaces(),
            cgroup=self.cgroups[0].describe() if self.cgroups else None,
            seccomp=self.seccomp is not None,
            seccomp_info=self.seccomp_info,
        )  # fmt: skip
        gc.freeze()  # out of the collector's sight: the tests' processes forked from here copy fewer pages
        self._start_zygote()

    def _start_zygote(self):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        if self.mode != "none":
            # The zygote is PID 1 of a namespace owned by our user namespace, so that it may come
            # back to it after making each program's (and when it dies, everything it made dies).
            _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
        pid = os.fork()
        if pid == 0:
            parent.close()
            try:
                Zygote(self, child).serve()
            except BaseException:
                traceback.print_exc()
            os._exit(0)
        child.close()
        self.zygote_pid, self.zsock = pid, parent
        hello, _ = _sock_recv(parent)
        if hello is None:
            raise RuntimeError("the zygote did not start")
        self.features.update(hello)

    # ------------------------------------------------------------------ one job
    def _fork_checker(self, close=()):
        """The next test job's process, forked ahead of its job: it holds no test until it reads
        one from its job pipe, and (forked from the server, like the zygote) none of a program's."""
        q_r, q_w = os.pipe()  # tests -> program
        a_r, a_w = os.pipe()  # program -> tests
        verdict_r, v_w = os.pipe()
        job_r, job_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                for fd in (q_r, a_w, verdict_r, job_w, *close):
                    os.close(fd)
                _run_checker(job_r, q_w, a_r, v_w, self.zsock.fileno())
            finally:
                os._exit(70)
        for fd in (q_w, a_r, v_w, job_r):
            os.close(fd)
        self.spare_checker = (pid, q_r, a_w, verdict_r, job_w)

    def _reap_checkers(self):
        for pid in list(self.dying_checkers):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.dying_checkers.remove(pid)

    def run(self, req):
        self.jobs += 1
        job_id = self.jobs
        test = req.get("test")
        job = {k: v for k, v in req.items() if k not in ("test", "entry_point", "context")}
        job["id"] = job_id
        job["channel"] = test is not None
        checker = verdict_r = None
        self._reap_checkers()
        if test is None:
            _sock_send(self.zsock, job)
        else:
            if self.spare_checker is None:
                self._fork_checker()
            checker, q_r, a_w, verdict_r, job_w = self.spare_checker
            self.spare_checker = None
            _sock_send(self.zsock, job, [q_r, a_w])
            os.close(q_r)
            os.close(a_w)
            tests = {k: req.get(k) for k in ("test", "entry_point", "context", "memory_mb")}
            try:
                _write_all(job_w, json.dumps(tests).encode())
            except OSError:
                pass  # the test process is gone: its verdict pipe says so
            finally:
                os.close(job_w)
            self._fork_checker(close=(verdict_r,))  # the next job's, while this one runs
        result = verdict = None
        verdict_bytes = b""
        grace = None  # once the program is done, the tests get this long to say so
        try:
            while result is None or (checker is not None and verdict is None):
                fds = (
                    [0]
                    + ([self.zsock] if result is None else [])
                    + ([verdict_r] if verdict is None and checker else [])
                )
                wait = None if grace is None else max(0.0, grace - time.monotonic())
                ready, _, _ = select.select(fds, [], [], wait)
                if not ready and grace is not None:
                    verdict = {"passed": False, "reason": "the tests did not finish", "unfinished": True}
                    break
                for fd in ready:
                    if fd == 0:  # the next request (the harness sends ahead), or the harness went away
                        self.inbox.fill()
                    elif fd == self.zsock:
                        result, _ = _sock_recv(self.zsock)
                        if result is None:
                            raise RuntimeError("the zygote died")
                        grace = time.monotonic() + 2.0
                    elif fd == verdict_r:
                        chunk = os.read(verdict_r, 65536)
                        verdict_bytes += chunk
                        if not chunk:  # the test process closes it once it has written the verdict
                            try:
                                verdict = json.loads(verdict_bytes)
                            except ValueError:
                                verdict = {
                                    "passed": False,
                                    "reason": "the test process died",
                                    "unfinished": True,
                                }
                            if result is None and not verdict.get("gone"):  # tests done: stop the program
                                _sock_send(self.zsock, {"op": "stop", "id": job_id})
        finally:
            if checker:
                _kill(checker)  # reaped later: nothing waits for its exit
                self.dying_checkers.append(checker)
                os.close(verdict_r)
        if verdict is not None:
            result["verdict"] = verdict
        return result

    def close(self):
        if self.spare_checker is not None:
            _kill(self.spare_checker[0])
            self.dying_checkers.append(self.spare_checker[0])
            for fd in self.spare_checker[1:]:
                os.close(fd)
            self.spare_checker = None
        for pid in self.dying_checkers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.dying_checkers = []
        if self.zsock is not None:
            self.zsock.close()
        if self.zygote_pid:
            _kill(self.zygote_pid)
            os.waitpid(self.zygote_pid, 0)
        scratch = self.features.get("scratch_root")
        if scratch:  # the unisolated path's work folders (its programs are dead with their zygote)
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
        for group in self.cgroups or ():
            group.close()


# ---------------------------------------------------------------------- the zygote


class Zygote:
    """Forks programs. Forked from the server before any job, so its memory never held a test."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.mode = server.mode
        self.cgroups = bool(server.cgroups)
        self.free_cgroups = list(server.cgroups or ())
        # every init not yet both reaped and reported: pid -> [its cgroup, reaped, finished, pidfd]
        self.inits = {}
        self.job_fds = ()  # the running program's pipes: the next init must not inherit them
        self.seccomp = server.seccomp
        self.max_output = server.max_output
        self.tmpfs_mb = int(server.config.get("tmpfs_mb", 256))
        self.scratch_root = None
        self.own_pidns = None
        self.spare = None  # (init pid, ctl socket, out_r, err_r, st_r, workdir, cgroup): ready, not yet used
        self.programs = 0

    def serve(self):
        _import_all(self.server.config.get("warm", WARM))  # the programs' (before the minimal root)
        os.dup2(os.open(os.devnull, os.O_RDWR), 0)
        os.dup2(2, 1)  # stdout is the harness's pipe: not ours to write
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back here, to be reaped
        features = {"minimal_root": False}
        if self.mode != "none":
            try:
                self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
                _check(_libc.unshare(CLONE_NEWNS), "unshare(mount)")
                _mount(None, "/", None, MS_REC | MS_PRIVATE, what="make private")
                _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755", what="tmpfs")
                build_root("/tmp")
                features["minimal_root"] = True
            except OSError as exc:
                _sock_send(self.sock, {"zygote_error": f"minimal root failed: {exc}"})
                return
        else:
            import tempfile

            self.scratch_root = tempfile.mkdtemp(prefix="editlm-sandbox-")
            os.chmod(self.scratch_root, 0o711)
            # the server removes it once this zygote is gone (it is killed, never left to clean up)
            features["scratch_root"] = self.scratch_root
        gc.freeze()  # long-lived objects out of the collector's sight: forked programs copy fewer pages
        self._prepare()
        _sock_send(self.sock, features)
        while True:
            # while waiting for a job, reap the inits of finished programs as their namespaces end
            dying = {e[3]: p for p, e in self.inits.items() if e[2] and not e[1] and e[3] is not None}
            ready, _, _ = select.select([self.sock, *dying], [], [])
            if self.sock not in ready:
                self._reap()
                continue
            job, fds = _sock_recv(self.sock)
            if job is None:
                break
            if job.get("op") == "stop":  # for a job already finished
                for fd in fds:
                    os.close(fd)
                continue
            try:
                reply = self.run(job, fds)
            except BaseException as exc:  # noqa: BLE001 - one broken job is one failed result
                reply = {"internal_error": f"{type(exc).__name__}: {exc}", "wall": 0.0}
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            _sock_send(self.sock, reply)
            if self.spare is None:
                self._prepare()

    def run(self, job, chan):
        timeout = float(job.get("timeout", 5.0))
        memory = int(job.get("memory_mb", 1024)) * 1024 * 1024
        nproc = int(job.get("max_processes", 32))
        if self.spare is None:
            self._prepare()
        pid, ctl, out_r, err_r, st_r, workdir, group = self.spare
        self.spare = None
        if group is not None:
            group.set_limits(memory, nproc + 2)  # + the namespace's init and the program itself
            # nothing runs in a cgroup between two programs: the count its last one left is current
            oom_before = group.oom_kills() if group.oom_seen is None else group.oom_seen
        t0 = time.monotonic()
        try:
            _sock_send(ctl, job, chan)
        except OSError:
            pass  # the init died setting up: its status pipe says why
        finally:
            ctl.close()
            for fd in chan:
                os.close(fd)
        # the next program's init and namespaces, made while this one runs (its own cgroup)
        self.job_fds = (out_r, err_r, st_r)
        try:
            self._prepare()
        except Exception:  # noqa: BLE001 - tried again (and reported) with the next job
            self.spare = None
        finally:
            self.job_fds = ()
        out, err = _Capture(self.max_output), _Capture(self.max_output)
        status = b""
        open_fds = {out_r: out, err_r: err, st_r: None}
        started = None
        timed_out = stopped = False
        deadline = t0 + timeout + 10.0  # setting up may not take forever either
        # Done when every process of the program has closed its pipes (the status pipe: the
        # init, which writes how the program ended, then exits). The kernel tears the
        # namespaces down after that (unmounts, RCU grace periods: milliseconds); nobody waits
        # for it: the init is reaped later, and its cgroup is reused only then.
        while open_fds:
            wait = deadline - time.monotonic()
            if wait <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([*open_fds, self.sock], [], [], wait)
            for fd in ready:
                if fd == self.sock:
                    msg, extra = _sock_recv(self.sock)
                    for x in extra:
                        os.close(x)
                    if msg is None:
                        raise SystemExit(0)
                    if msg.get("op") == "stop" and msg.get("id") == job["id"]:
                        stopped = True
                else:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        del open_fds[fd]
                        os.close(fd)
                    elif fd == st_r:
                        status += chunk
                        for line in status.split(b"\n"):
                            if line == b"start" and started is None:
                                started = time.monotonic()
                                deadline = started + timeout
                    else:
                        open_fds[fd].add(chunk)
            if stopped:
                break
        alive = not self.inits.get(pid, [None, True])[1]  # not reaped: the pid is still its
        if (timed_out or stopped) and alive:
            # the init kills its namespace and exits; SIGKILL below if it does not in time
            _kill(pid, signal.SIGUSR1 if self.mode != "none" else signal.SIGKILL)
        if self.mode == "none":
            _killpg(pid)
            self._reap(block_for=pid)  # no namespace kills the rest: wait for the init
        drain_until = time.monotonic() + 1.0
        for fd in list(open_fds):
            try:
                while time.monotonic() < drain_until:
                    r, _, _ = select.select([fd], [], [], 0.1)
                    if not r:
                        break
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        del open_fds[fd]
                        break
                    if fd == st_r:
                        status += chunk
                    else:
                        open_fds[fd].add(chunk)
            finally:
                os.close(fd)
        if st_r in open_fds and alive:  # the init did not end: the kernel kills the namespace
            _kill(pid)
        end = time.monotonic()
        oom_killed = False
        if group is not None:
            group.oom_seen = group.oom_kills()
            oom_killed = group.oom_seen > oom_before
        self._ended(pid, finished=True)
        self._reap()
        if workdir:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        returncode = cpu = None
        info = status.decode(errors="replace")
        for line in info.splitlines():
            if line.startswith("exit "):
                _, code, used = line.split()
                returncode, cpu = os.waitstatus_to_exitcode(int(code)), float(used)
            elif line.startswith("setup-error"):
                err.add(f"sandbox setup failed: {line[len('setup-error') :].strip()}\n".encode())
        if timed_out or stopped:
            returncode = None
        return {
            "timed_out": timed_out,
            "stopped": stopped,
            "returncode": returncode,
            "cpu": cpu,
            "cpu_limit": int(timeout) + 1,
            "oom_killed": oom_killed,
            "started": started is not None,
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "wall": end - (started or t0),
        }

    # ------------------------------------------------------------------ the program's processes
    def _ended(self, pid, *, reaped=False, finished=False):
        """Its init reaped (everything of the program gone) and its job reported: the cgroup is free."""
        entry = self.inits.get(pid)
        if entry is None:
            return
        entry[1] |= reaped
        entry[2] |= finished
        if entry[1] and entry[3] is not None:
            os.close(entry[3])
            entry[3] = None
        if entry[1] and entry[2]:
            del self.inits[pid]
            if entry[0] is not None:
                self.free_cgroups.append(entry[0])

    def _reap(self, block_for=None):
        """Reap what has ended (finished programs' inits, orphans); ``block_for``: wait for it first."""
        if block_for is not None:
            try:
                os.waitpid(block_for, 0)
            except ChildProcessError:
                pass
            self._ended(block_for, reaped=True)
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if done == 0:
                return
            self._ended(done, reaped=True)

    def _free_cgroup(self):
        self._reap()
        while not self.free_cgroups:
            dying = [pid for pid, (_, reaped, finished, _) in self.inits.items() if finished and not reaped]
            if not dying:
                raise RuntimeError("no cgroup is free")
            self._reap(block_for=dying[0])  # the oldest program still being torn down
        return self.free_cgroups.pop(0)

    def _prepare(self):
        """Make the next program's init and namespaces ahead of its job (so a job waits for none
        of that): the program's process waits, still trusted, for its code on a socket."""
        self.programs += 1
        # unique among live programs: the server's pid (the zygote is PID 1 of its namespace) and a count
        uid = 1_000_000 + (self.server.features["pid"] % 32768) * 1000 + self.programs % 1000
        if self.mode == "none":
            import tempfile

            workdir = tempfile.mkdtemp(dir=self.scratch_root)
        else:
            workdir = None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        st_r, st_w = os.pipe()
        ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        group = self._free_cgroup() if self.cgroups else None
        pid = -1
        if self.mode != "none":
            _check(_libc.unshare(CLONE_NEWPID), "unshare(pid)")
        try:
            pid = os.fork()
        finally:
            if self.mode != "none" and pid != 0:
                _check(_libc.setns(self.own_pidns, CLONE_NEWPID), "setns(pid)")
        if pid == 0:
            try:
                others = [e[3] for e in self.inits.values()]  # other inits' pidfds
                for fd in (out_r, err_r, st_r, ctl.fileno(), self.sock.fileno(), self.own_pidns, *self.job_fds,
                           *others):  # fmt: skip
                    if fd is not None:
                        os.close(fd)
                self._init(uid, workdir, out_w, err_w, st_w, ctl_child, group)
            except BaseException as exc:  # noqa: BLE001
                try:
                    os.write(st_w, f"setup-error {_where(exc)}\n".encode())
                except OSError:
                    pass
            os._exit(71)
        for fd in (out_w, err_w, st_w):
            os.close(fd)
        ctl_child.close()
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # an old kernel: reaped when the next program is made
            pidfd = None
        self.inits[pid] = [group, False, False, pidfd]
        self.spare = (pid, ctl, out_r, err_r, st_r, workdir, group)

    def _init(self, uid, workdir, out_w, err_w, st_w, ctl, group):
        """PID 1 of the program's new PID namespace: joins the cgroup, makes the other namespaces,
        a fresh /tmp and /proc, forks the program and reaps until it ends."""
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if self.mode != "root":
            uid = os.geteuid()
        if group is not None:
            group.join()
        if self.mode != "none":
            outside = os.geteuid(), os.getegid()
            # mount first (the PID namespace's owner may mount its /proc), then, without root,
            # a user namespace of the program's own that owns its IPC and UTS namespaces
            if self.mode == "root":
                _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            else:
                _check(_libc.unshare(CLONE_NEWNS), "unshare(mount)")
            size = self.tmpfs_mb
            _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,nr_inodes=16384,mode=1777")
            try:
                _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, what="proc")
            except OSError:  # no proc of our own: none at all rather than the server's
                _mount("tmpfs", "/proc", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k", what="tmpfs")
            if self.mode == "userns":
                _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWUTS), "unshare(user)")
                _map_self(SANDBOX_UID, *outside)
                uid = SANDBOX_UID
            _libc.sethostname(b"sandbox", 7)
            workdir = "/tmp"
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        os.chdir(workdir)
        if self.mode == "none":
            os.chmod(workdir, 0o700)
        if self.mode != "none":
            # Asked to stop (SIGUSR1, from the zygote): kill the namespace, then exit. The
            # status pipe closes only when the init exits, after that kill: once the zygote
            # sees it close, no process of the program runs again (the kernel finishes off
            # the namespace later, and the next program never waits for that).
            signal.signal(signal.SIGUSR1, lambda *_: _end_namespace())  # the program resets it
        pid = os.fork()
        if pid == 0:
            try:
                # everything that does not depend on the job happens before it comes
                self._lock_down(uid, out_w, err_w, st_w, ctl.fileno())
                job, chan = _sock_recv(ctl)
                ctl.close()
                if job is None:
                    os._exit(0)
                with open("main.py", "w", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(job["code"])
                with open(".stdin", "wb") as f:
                    f.write(job.get("stdin", "").encode("utf-8", "surrogateescape"))
                self._program(job, st_w, chan)
            except BaseException as exc:  # noqa: BLE001
                try:
                    os.write(st_w, f"setup-error {_where(exc)}\n".encode())
                except OSError:
                    pass
            os._exit(71)
        for fd in (out_w, err_w):
            os.close(fd)
        ctl.close()
        while True:
            try:
                done, status, usage = os.wait4(-1, 0)
            except ChildProcessError:
                os._exit(0)
            if done == pid:
                cpu = usage.ru_utime + usage.ru_stime
                if self.mode == "none":
                    _killpg(pid)
                else:
                    _kill_others()
                os.write(st_w, f"exit {status} {cpu:.3f}\n".encode())
                os._exit(0)

    def _lock_down(self, uid, out_w, err_w, st_w, ctl):
        """The program's process before its job: own session, unprivileged, filtered (all of
        this is the same for every job, so it is done while the process waits for one)."""
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        keep = sorted({0, 1, 2, st_w, ctl})
        start = 3
        for fd in keep[3:]:
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, 65536)
        for sig in (
            signal.SIGTERM,
            signal.SIGHUP,
            signal.SIGUSR1,
            signal.SIGINT,
            signal.SIGXCPU,
            signal.SIGPIPE,
        ):
            signal.signal(sig, signal.SIG_DFL)
        _drop_capabilities_and_uid(self.mode, uid)
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if self.seccomp is not None:
            _load_seccomp(self.seccomp)

    def _program(self, job, st_w, chan):
        """The untrusted program, once its job (code, stdin, limits) has come: limited, then run."""
        fd = os.open(".stdin", os.O_RDONLY)
        os.unlink(".stdin")
        os.dup2(fd, 0)
        os.close(fd)
        memory = int(job.get("memory_mb", 1024)) * 1024 * 1024
        cpu = int(float(job.get("timeout", 5.0))) + 1
        nproc = int(job.get("max_processes", 32))
        if self.mode == "none":
            nproc += _user_processes()  # the count is shared with the caller's own processes
        limits = [
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_DATA, memory, memory),
            (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL a second later
            (resource.RLIMIT_FSIZE, int(job.get("max_file_mb", 64)) * 1024 * 1024, None),
            (resource.RLIMIT_NOFILE, int(job.get("max_open_files", 64)), None),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NPROC, nproc, None),
        ]
        for which, soft, hard in limits:  # only ever lowered: no capability is left to raise one
            old_soft, old_hard = resource.getrlimit(which)
            hard = soft if hard is None else hard
            if old_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, old_hard), min(hard, old_hard)
            resource.setrlimit(which, (soft, hard))
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": os.getcwd(),
            "TMPDIR": os.getcwd(),
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8",
        }
        path = os.path.join(os.getcwd(), "main.py")
        os.write(st_w, b"start\n")
        os.close(st_w)
        if job.get("fresh") and not chan:
            os.execve(EXECUTABLE, [EXECUTABLE, *INTERPRETER_FLAGS, "main.py"], env)
        os.environ.clear()
        os.environ.update(env)
        _exec_here(job["code"], path, chan)


def _drop_capabilities_and_uid(mode, uid):
    for cap in range(64):  # the bounding set, while we still may (CAP_SETPCAP)
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 1:
            break  # EINVAL: past the last capability this kernel has
    if mode == "root":
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _drop_capabilities()


def _exec_here(code, path, chan):
    """Run ``code`` as ``__main__`` of this (forked, pristine) interpreter; then, for a test job,
    answer the tests' calls until they close the channel."""
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
        if chan:
            _answer_calls(module.__dict__, *chan)
    except SystemExit as exc:
        rc = _exit_code(exc.code)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)  # without this frame
        rc = 1
    threading = sys.modules.get("threading")  # imported by the program, if it used threads
    try:
        if threading is not None:
            threading._shutdown()
    except BaseException:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(rc)


def _describe(value):
    """What the tests' side gets for one of the program's names."""
    if isinstance(value, types.ModuleType):
        return ["module", str(getattr(value, "__name__", ""))]
    if callable(value):
        return ["callable"]
    try:
        channel.to_wire(value, lenient=True)
        return ["value", value]
    except channel.ChannelError:
        return ["other", type(value).__name__]


def _answer_calls(namespace, q_r, a_w):
    """The program's side of the channel (it may answer anything it likes: it only ever makes
    claims about its own return values)."""
    while True:
        try:
            msg = channel.receive(q_r)
        except channel.ChannelClosed:
            return
        op = msg[0]
        if op == "lookup":
            reply = {name: _describe(namespace[name]) for name in msg[1] if name in namespace}
        elif op == "call":
            _, name, args, kwargs = msg
            try:
                result = namespace[name](*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001
                try:
                    text = str(exc)[:2000]
                except BaseException:  # noqa: BLE001
                    text = ""
                reply = ["raise", type(exc).__name__, text]
            else:
                mutable = any(isinstance(a, list | dict | set | bytearray) for a in args)
                reply = ["return", result, list(args) if mutable else None]
        else:
            reply = ["bad", f"unknown request {op!r}"]
        for stream in (sys.stdout, sys.stderr):  # the program is killed once the tests are done
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        try:
            channel.send(a_w, reply, lenient=True)
        except channel.ChannelError as exc:
            channel.send(a_w, ["bad", str(exc)])


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except BaseException:  # noqa: BLE001
        pass
    return 1


# ---------------------------------------------------------------------- the tests' process


class CandidateError(Exception):
    """An exception raised by the program that has no builtin counterpart."""


def _free_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _free_names(const)
    return names


def _run_checker(job_r, q_w, a_r, v_w, zsock_fd):
    """Forked from the server: wait for a test job, then run ``check(entry_point)`` against the
    program over the channel."""
    os.close(zsock_fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = sorted({0, 1, 2, q_w, a_r, v_w, job_r})
    start = 3
    for fd in keep[3:]:
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 65536)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a program gone mid-write: ChannelClosed, not death
    chunks = []
    while chunk := os.read(job_r, 1 << 20):
        chunks.append(chunk)
    os.close(job_r)
    if not chunks:  # not needed after all (the server is closing)
        os._exit(0)
    req = json.loads(b"".join(chunks))
    # trusted, but fed the program's answers (up to channel.MAX_BYTES each): bounded like one
    memory = max(2048, 2 * int(req.get("memory_mb", 1024))) * 1024 * 1024
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    memory = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    verdict = check_program(req["test"], req["entry_point"], q_w, a_r, req.get("context", ""))
    _write_all(v_w, json.dumps(verdict).encode())
    os.close(v_w)  # the verdict is complete here: the server need not wait for this exit
    os._exit(0)


def _trusted_names(context, entry_point):
    """What the trusted ``context`` defines (its failures leave it out: the program's names stand)."""
    namespace = {"__name__": "__test__", "__builtins__": builtins}
    try:
        exec(compile(context, "<context>", "exec"), namespace)
    except BaseException:  # noqa: BLE001 - a context that does not run gives nothing
        return {}
    namespace.pop(entry_point, None)
    return namespace


def check_program(test, entry_point, q_w, a_r, context=""):
    """The verdict of ``test`` + ``check(entry_point)`` with the program behind the channel."""
    calls = [0]

    def remote(name):
        def call(*args, **kwargs):
            calls[0] += 1
            channel.send(q_w, ["call", name, args, kwargs])
            reply = channel.receive(a_r)
            if type(reply) is not list or not reply or type(reply[0]) is not str:
                raise channel.ChannelError("malformed reply")
            if reply[0] == "return" and len(reply) == 3:
                if reply[2] is not None and type(reply[2]) is list and len(reply[2]) == len(args):
                    for old, new in zip(args, reply[2], strict=True):  # in-place changes, top level
                        if type(old) is list and type(new) is list:
                            old[:] = new
                        elif type(old) in (dict, set) and type(new) is type(old):
                            old.clear()
                            old.update(new)
                return reply[1]
            if reply[0] == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
                cls = getattr(builtins, reply[1], None)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    try:
                        exc = cls(reply[2])
                    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
                        exc = CandidateError(f"{reply[1]}: {reply[2]}")
                else:
                    exc = CandidateError(f"{reply[1]}: {reply[2]}")
                raise exc
            if reply[0] == "bad" and len(reply) == 2 and type(reply[1]) is str:
                raise channel.ChannelError(f"the program's answer: {reply[1][:300]}")
            raise channel.ChannelError("malformed reply")

        call.__name__ = call.__qualname__ = name
        return call

    try:
        code = compile(test, "<test>", "exec")
        wanted = sorted((_free_names(code) | {entry_point}) - set(dir(builtins)))
        channel.send(q_w, ["lookup", wanted])
        found = channel.receive(a_r)
        if type(found) is not dict:
            raise channel.ChannelError("malformed reply")
        namespace = {"__name__": "__test__", "__builtins__": builtins}
        for name, desc in found.items():
            if name not in wanted or type(desc) is not list or not desc:
                continue
            if desc[0] == "callable":
                namespace[name] = remote(name)
            elif desc[0] == "value" and len(desc) == 2:
                namespace[name] = desc[1]
            elif desc[0] == "module" and len(desc) == 2 and type(desc[1]) is str:
                top = desc[1].partition(".")[0]
                if top in sys.stdlib_module_names and top not in ("antigravity", "this"):
                    import importlib

                    namespace[name] = importlib.import_module(desc[1])
        if context:
            namespace.update(_trusted_names(context, entry_point))
        exec(code, namespace)
        eval(compile(f"check({entry_point})", "<check call>", "eval"), namespace)
    except channel.ChannelClosed:
        return {"passed": False, "gone": True, "calls": calls[0]}
    except BaseException as exc:  # noqa: BLE001 - every way the tests end is a verdict
        return {"passed": False, "reason": _test_reason(exc, test), "calls": calls[0]}
    return {"passed": True, "calls": calls[0]}


def _test_reason(exc, test):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<test>":
            line = lineno
    if line is not None:
        source = test.splitlines()[line - 1].strip() if 0 < line <= len(test.splitlines()) else ""
        text += f" (test line {line}: {source[:160]})"
    return text[:600]


# ---------------------------------------------------------------------- helpers


def _where(exc):
    """``exc`` and the line of this file that raised it (for setup errors)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == __file__]
    return f"{exc!r} (line {frames[-1].lineno})" if frames else repr(exc)


def _import_all(names):
    for name in names.split():
        try:
            __import__(name)
        except ImportError:
            pass


def _kill_others():
    """From PID 1 of a program's namespace: SIGKILL to every other process in it (and only it)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass  # ESRCH: nothing else is left


def _end_namespace():
    _kill_others()
    os._exit(0)


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
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


class _Inbox:
    """Requests from the harness, which may send the next before this one's reply (pipelining)."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = b""

    def fill(self):
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise SystemExit(0)  # the harness went away
        self.buffer += chunk

    def next(self):
        """The next request, or None when the harness has closed its end."""
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    body, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
                    return json.loads(body)
            try:
                self.fill()
            except SystemExit:
                return None


def _load_channel():
    global channel
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "channel.py")
    spec = importlib.util.spec_from_file_location("_editlm_channel", path)
    channel = importlib.util.module_from_spec(spec)
    sys.modules["_editlm_channel"] = channel
    spec.loader.exec_module(channel)


def main():
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    _load_channel()
    server = Server(config)
    server.setup()
    _send({"ready": True, **server.features})
    try:
        while True:
            req = server.inbox.next()
            if req is None:
                break
            try:
                reply = server.run(req)
            except SystemExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - keep serving: one broken job is one failed result
                reply = {"internal_error": f"{type(exc).__name__}: {exc}", "wall": 0.0}
                if "zygote died" in str(exc):
                    _send(reply)
                    break
            _send(reply)
    finally:
        server.close()


if __name__ == "__main__":
    main()
