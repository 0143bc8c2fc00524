"""The HTTP server: edits proposed by a model, applied (or refused with the reason), batching that
never makes /v1/health wait, limits, JSON errors, offline docs, OpenAI completions, a real uvicorn
run, and the page at / driven in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from editlm.edits.diff import make_diff
from editlm.generate.engines import Completion, PromptTooLong
from editlm.serve import Limits, create_app

SOURCE = "def area(r):\n    return 3.14 * r * r\n"
FIXED = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n"
GOOD = " " + make_diff(SOURCE, FIXED, headers=False) + "<NME> next sample"


class _ScriptedEngine:
    name = "scripted"

    def __init__(self, texts, gate: threading.Event | None = None, error: Exception | None = None):
        self.texts, self.prompts, self.calls, self.predictions = texts, [], [], []
        self.gate, self.error = gate, error
        self.entered = threading.Event()

    def sample(self, prompts, n, params, predictions=None):
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        self.calls.append(list(prompts))
        self.prompts += prompts
        self.predictions.append(predictions)
        if self.error is not None:
            raise self.error
        return [[Completion(t, -1.0 - k, 3, "stop") for k, t in enumerate(self.texts[:n])] for _ in prompts]


def test_edit_returns_applied_programs_and_errors() -> None:
    engine = _ScriptedEngine([GOOD, " @@ -9,1 +9,1 @@\n-nothing\n+x\n"])
    client = TestClient(create_app(engine, "scripted"))
    reply = client.post(
        "/v1/edit", json={"name": "geo.py", "source": SOURCE, "message": "Use math.pi", "n": 2}
    )
    assert reply.status_code == 200
    first, second = reply.json()["proposals"]
    assert first["program"] == FIXED and first["error"] is None and "exact" in first["placements"][0]
    assert second["program"] is None and "hunk 1" in second["error"]
    assert engine.prompts[0] == f"<NME> geo.py\n<BEF> {SOURCE}\n<MSG> Use math.pi\n<DFF>"
    assert engine.predictions[0] == [SOURCE]  # the file is the prediction


def test_apply_health_validation_and_json_errors() -> None:
    client = TestClient(create_app(None))
    assert client.get("/v1/health").json()["engine"] is None
    diff = make_diff(SOURCE, FIXED)
    applied = client.post("/v1/apply", json={"source": SOURCE, "diff": diff}).json()
    assert applied["program"] == FIXED and len(applied["placements"]) == 1
    refused = client.post("/v1/apply", json={"source": SOURCE, "diff": "garbage"})
    assert refused.status_code == 422 and "hunk" in refused.json()["detail"]
    no_model = client.post("/v1/edit", json={"source": SOURCE, "message": "x"})
    assert no_model.status_code == 503 and no_model.json()["reason"] == "unavailable"
    invalid = client.post("/v1/apply", json={"source": SOURCE})
    assert invalid.status_code == 422 and invalid.json()["reason"] == "invalid request"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["reason"] == "not found"


def test_limits_refuse_quickly_with_reasons() -> None:
    engine = _ScriptedEngine([GOOD])
    client = TestClient(create_app(engine, "m", Limits(max_chars=10_000, max_tokens=1000)))
    huge = client.post("/v1/edit", json={"source": "x = 1\n" * 5000, "message": "m"})
    assert huge.status_code == 413 and "30,000 characters" in huge.json()["detail"]
    costly = client.post("/v1/complete", json={"prompt": "p", "n": 8, "max_new_tokens": 500})
    assert costly.status_code == 422 and "n x max_new_tokens" in costly.json()["detail"]
    assert engine.calls == []  # refused before the model ran


def test_engine_errors_are_json_and_the_connection_survives() -> None:
    client = TestClient(create_app(_ScriptedEngine([], error=RuntimeError("CUDA out of memory")), "m"))
    reply = client.post("/v1/complete", json={"prompt": "p"})
    assert reply.status_code == 500 and reply.json()["reason"] == "engine error"
    assert "CUDA out of memory" in reply.json()["detail"]
    assert client.get("/v1/health").status_code == 200
    too_long = TestClient(create_app(_ScriptedEngine([], error=PromptTooLong("context is 512 tokens")), "m"))
    reply = too_long.post("/v1/complete", json={"prompt": "p"})
    assert reply.status_code == 413 and "512" in reply.json()["detail"]


def test_concurrent_requests_are_batched_and_health_does_not_wait() -> None:
    gate = threading.Event()
    engine = _ScriptedEngine(["out"], gate=gate)
    client = TestClient(create_app(engine, "m"))
    replies = {}

    def ask(k):
        replies[k] = client.post("/v1/complete", json={"prompt": f"prompt {k}", "temperature": 0})

    threads = [threading.Thread(target=ask, args=(0,))]
    threads[0].start()
    assert engine.entered.wait(10)  # the engine is busy with request 0
    threads += [threading.Thread(target=ask, args=(k,)) for k in (1, 2, 3)]
    for t in threads[1:]:
        t.start()
    for _ in range(200):
        health = client.get("/v1/health").json()  # answers while the engine is blocked
        if health["queued"] == 3:
            break
        time.sleep(0.02)
    assert health["queued"] == 3 and not gate.is_set()
    gate.set()
    for t in threads:
        t.join(30)
    assert all(replies[k].json()["completions"][0]["text"] == "out" for k in range(4))
    assert engine.calls[0] == ["prompt 0"] and len(engine.calls) == 2  # the three waiting went together
    assert sorted(engine.calls[1]) == ["prompt 1", "prompt 2", "prompt 3"]


def test_openapi_has_typed_responses_and_docs_are_offline() -> None:
    client = TestClient(create_app(None))
    schema = client.get("/openapi.json").json()
    ok = lambda path: schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]  # noqa: E731
    assert ok("/v1/edit")["schema"]["$ref"].endswith("/EditResponse")
    assert ok("/v1/completions")["schema"]["$ref"].endswith("/OpenAICompletionResponse")
    assert {"ProposalOut", "CompletionOut", "ApplyResponse"} <= set(schema["components"]["schemas"])
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert 'id="propose"' in client.get("/").text


def test_openai_completions_with_prediction() -> None:
    engine = _ScriptedEngine(["a", "b"])
    client = TestClient(create_app(engine, "scripted"))
    reply = client.post(
        "/v1/completions",
        json={"model": "x", "prompt": "def f(", "n": 2, "max_tokens": 8, "stop": "\n",
              "prediction": {"type": "content", "content": "def f(x):"}},
    )  # fmt: skip
    body = reply.json()
    assert reply.status_code == 200 and body["object"] == "text_completion" and body["model"] == "x"
    assert [c["text"] for c in body["choices"]] == ["a", "b"] and body["choices"][1]["index"] == 1
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["completion_tokens"] == 6
    assert engine.predictions[-1] == ["def f(x):"]


def test_edit_and_completions_with_a_real_tiny_model(tiny_model) -> None:
    from editlm.generate.engines import load_engine

    client = TestClient(create_app(load_engine("transformers", tiny_model), str(tiny_model)))
    reply = client.post(
        "/v1/edit", json={"source": SOURCE, "message": "Use math.pi", "n": 3, "max_new_tokens": 8, "seed": 1}
    )
    proposals = reply.json()["proposals"]
    assert 1 <= len(proposals) <= 3
    assert all((p["program"] is None) != (p["error"] is None) for p in proposals)
    plain = {"prompt": "def area(r):\n", "max_tokens": 12, "temperature": 0}
    with_prediction = {**plain, "prediction": {"type": "content", "content": SOURCE}}
    first = client.post("/v1/completions", json=plain).json()["choices"]
    second = client.post("/v1/completions", json=with_prediction).json()["choices"]
    assert first == second  # the prediction changes speed, not output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc=None) -> httpx.Response:
    for _ in range(200):
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    output = proc.stdout.read1().decode(errors="replace") if proc else ""
    pytest.fail(f"{url} did not answer: {output}")


def test_editlm_serve_command_runs_on_loopback() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "editlm.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        reply = _wait_for(f"http://127.0.0.1:{port}/v1/health", proc)
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


# -- the page, as a person uses it, in headless Chromium ---------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _DevTools:
    """A minimal Chrome DevTools Protocol client (websocket-client): evaluate, screenshot."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def until(self, expression: str, tries: int = 300):
        for _ in range(tries):
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"never true: {expression}")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)
def test_page_in_headless_chromium(tmp_path) -> None:
    import uvicorn

    engine = _ScriptedEngine([GOOD, " @@ -9,1 +9,1 @@\n-nothing\n+x\n"])
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, "scripted"), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    profile = tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/health")
        active = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(active) and open(active).read().count("\n") >= 1:
                break
            time.sleep(0.05)
        devtools_port = int(open(active).read().split("\n")[0])
        pages = [
            t for t in httpx.get(f"http://127.0.0.1:{devtools_port}/json/list").json() if t["type"] == "page"
        ]
        tab = _DevTools(pages[0]["webSocketDebuggerUrl"])
        tab.call("Page.enable")
        tab.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
        tab.until("document.readyState === 'complete' && !!document.getElementById('propose')")
        # a person pastes code, names the file, writes what to change and asks for two proposals
        tab.js(f"""document.getElementById('source').value = {json.dumps(SOURCE)};
                   document.getElementById('name').value = 'geo.py';
                   document.getElementById('message').value = 'Use math.pi';
                   document.getElementById('n').value = '2';
                   document.getElementById('propose').click(); true""")
        status = tab.until(
            "document.querySelectorAll('.proposal').length && document.getElementById('status').textContent"
        )
        assert "1 proposal apply, 1 refused" in status
        assert tab.js("document.querySelector('.proposal .add').textContent") == "+import math"
        assert "hunk 1" in tab.js("document.getElementById('refused').textContent")
        tab.js("document.querySelector('.proposal .use').click(); true")
        assert tab.js("document.getElementById('source').value") == FIXED
        assert "Applied proposal 1" in tab.js("document.getElementById('status').textContent")
        tab.js("document.getElementById('undo').click(); true")
        assert tab.js("document.getElementById('source').value") == SOURCE
        tab.js("document.querySelector('.proposal .use').click(); true")
        shot = tmp_path / "page.png"
        shot.write_bytes(base64.b64decode(tab.call("Page.captureScreenshot", format="png")["data"]))
        print(f"screenshot of the page: {shot}")
        assert shot.stat().st_size > 10_000
        # the API docs render offline (Swagger UI from the fastapi-offline package)
        tab.call("Page.navigate", url=f"http://127.0.0.1:{port}/docs")
        tab.until("document.querySelectorAll('.opblock').length >= 5")
        assert engine.prompts[0].startswith("<NME> geo.py\n")
    finally:
        browser.terminate()
        browser.wait(timeout=10)
        server.should_exit = True
        thread.join(10)
