"""The HTTP server: edits proposed by a model, applied (or refused with the reason); a real uvicorn run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from editlm.edits.diff import make_diff
from editlm.generate.engines import Completion
from editlm.serve import create_app

SOURCE = "def area(r):\n    return 3.14 * r * r\n"
FIXED = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n"


class _ScriptedEngine:
    name = "scripted"

    def __init__(self, texts):
        self.texts, self.prompts = texts, []

    def sample(self, prompts, n, params):
        self.prompts += prompts
        return [[Completion(t, -1.0) for t in self.texts[:n]] for _ in prompts]


def test_edit_returns_applied_programs_and_errors() -> None:
    good = " " + make_diff(SOURCE, FIXED, headers=False) + "<NME> next sample"
    engine = _ScriptedEngine([good, " @@ -9,1 +9,1 @@\n-nothing\n+x\n"])
    client = TestClient(create_app(engine, "scripted"))
    reply = client.post(
        "/v1/edit", json={"name": "geo.py", "source": SOURCE, "message": "Use math.pi", "n": 2}
    )
    assert reply.status_code == 200
    first, second = reply.json()["proposals"]
    assert first["program"] == FIXED and first["error"] is None
    assert second["program"] is None and "hunk 1" in second["error"]
    assert engine.prompts[0] == f"<NME> geo.py\n<BEF> {SOURCE}\n<MSG> Use math.pi\n<DFF>"


def test_apply_and_health_and_validation() -> None:
    client = TestClient(create_app(None))
    assert client.get("/v1/health").json()["engine"] is None
    diff = make_diff(SOURCE, FIXED)
    assert client.post("/v1/apply", json={"source": SOURCE, "diff": diff}).json() == {"program": FIXED}
    refused = client.post("/v1/apply", json={"source": SOURCE, "diff": "garbage"})
    assert refused.status_code == 422 and "hunk" in refused.json()["detail"]
    assert client.post("/v1/edit", json={"source": SOURCE, "message": "x"}).status_code == 503
    assert client.post("/v1/apply", json={"source": SOURCE}).status_code == 422


def test_edit_with_a_real_tiny_model(tiny_model) -> None:
    from editlm.generate.engines import load_engine

    client = TestClient(create_app(load_engine("transformers", tiny_model), str(tiny_model)))
    reply = client.post(
        "/v1/edit", json={"source": SOURCE, "message": "Use math.pi", "n": 3, "max_new_tokens": 8, "seed": 1}
    )
    proposals = reply.json()["proposals"]
    assert len(proposals) == 3
    assert all((p["program"] is None) != (p["error"] is None) for p in proposals)
    completions = client.post("/v1/complete", json={"prompt": "def f(", "n": 2, "max_new_tokens": 4}).json()
    assert len(completions["completions"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_editlm_serve_command_runs_on_loopback() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "editlm.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not start: " + proc.stdout.read1().decode(errors="replace"))
        assert reply.json()["status"] == "ok"
        applied = httpx.post(
            f"http://127.0.0.1:{port}/v1/apply",
            json={"source": SOURCE, "diff": make_diff(SOURCE, FIXED)},
            timeout=5,
        )
        assert applied.json()["program"] == FIXED
    finally:
        proc.terminate()
        proc.wait(timeout=10)
