"""``editlm serve``: an HTTP server (FastAPI) that proposes edits to files with a diff model.

    POST /v1/edit      {name, source, message, n?, temperature?, hunk_header?}
                       -> {proposals: [{diff, program | null, error | null, logprob}]}
    POST /v1/apply     {source, diff} -> {program} or 422 with the DiffError message
    POST /v1/complete  {prompt, n?, temperature?, max_new_tokens?, stop?} -> {completions: [...]}
    GET  /v1/health    -> {status, engine, model}

Proposals are applied with the same tolerant patcher as everywhere else; a diff that does not apply
comes back with its error instead of being dropped. Nothing a model writes is executed here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import typer
from pydantic import BaseModel, Field

from editlm.edits.diff import DiffError, apply_diff
from editlm.edits.diff_model import DiffSample, FormatError, extract_diff
from editlm.generate.engines import Engine, SamplingParams


class EditRequest(BaseModel):
    name: str = Field("main.py", description="File name, as in <NME>.")
    source: str | None = Field(..., description="The file before; null for a new file (ADDFILE).")
    message: str = Field(..., description="What to change, as a commit message.")
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=1, le=4096)
    hunk_header: str | None = Field(
        None, description="Optional '@@ -a,b +c,d @@' to say which lines to change."
    )
    seed: int = 0


class ApplyRequest(BaseModel):
    source: str
    diff: str


class CompleteRequest(BaseModel):
    prompt: str
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=1, le=4096)
    stop: list[str] = Field(default_factory=list)
    seed: int = 0


def create_app(engine: Engine | None, model: str = ""):
    """The FastAPI app; ``engine`` None serves only /v1/apply and /v1/health."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="editlm", description="Edits proposed by diff models.")
    lock = threading.Lock()  # engines are not re-entrant; requests take turns on the model

    def need_engine() -> Engine:
        if engine is None:
            raise HTTPException(503, "this server was started without a model")
        return engine

    @app.get("/v1/health")
    def health() -> dict:
        return {"status": "ok", "engine": engine.name if engine else None, "model": model}

    @app.post("/v1/apply")
    def apply(request: ApplyRequest) -> dict:
        try:
            return {"program": apply_diff(request.source, request.diff)}
        except DiffError as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post("/v1/edit")
    def edit(request: EditRequest) -> dict:
        eng = need_engine()
        try:
            prompt = DiffSample(request.name, request.source, request.message, "").prompt(request.hunk_header)
        except FormatError as exc:
            raise HTTPException(422, str(exc)) from None
        params = SamplingParams(
            request.temperature, request.top_p, request.max_new_tokens, ("<NME>",), request.seed
        )
        with lock:
            completions = eng.sample([prompt], request.n, params)[0]
        proposals = []
        for c in completions:
            diff = extract_diff(c.text)
            if request.hunk_header:
                diff = request.hunk_header.rstrip() + "\n" + diff
            try:
                program, error = apply_diff(request.source or "", diff), None
            except DiffError as exc:
                program, error = None, str(exc)
            proposals.append({"diff": diff, "program": program, "error": error, "logprob": c.logprob})
        return {"proposals": proposals}

    @app.post("/v1/complete")
    def complete(request: CompleteRequest) -> dict:
        eng = need_engine()
        params = SamplingParams(
            request.temperature, request.top_p, request.max_new_tokens, tuple(request.stop), request.seed
        )
        with lock:
            completions = eng.sample([request.prompt], request.n, params)[0]
        return {
            "completions": [{"text": c.text, "logprob": c.logprob, "finish": c.finish} for c in completions]
        }

    return app


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: Path = typer.Argument(
            None, help="A local Hugging Face causal LM directory (omit: /v1/apply only)."
        ),
        engine: str = typer.Option("transformers", help="transformers, ctranslate2 or vllm."),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8000),
    ) -> None:
        """Serve edit proposals over HTTP (see /docs for the API)."""
        import uvicorn

        from editlm.generate.engines import EngineUnavailable, load_engine

        try:
            eng = load_engine(engine, model) if model else None
        except EngineUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--engine") from None
        uvicorn.run(create_app(eng, str(model or "")), host=host, port=port)
