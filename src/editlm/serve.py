"""``editlm serve``: an HTTP server (FastAPI) that proposes edits to files with a diff model.

    GET  /                 a page: paste code, write a message, see the proposed diffs applied, pick one
    POST /v1/edit          {name, source, message, n?, temperature?, lines? | hunk_header?} -> {proposals}
    POST /v1/apply         {source, diff} -> {program, placements} or 422 with the DiffError message
    POST /v1/complete      {prompt, n?, temperature?, max_new_tokens?, stop?, prediction?} -> {completions}
    POST /v1/completions   OpenAI-compatible completions, with OpenAI's ``prediction`` field
    GET  /v1/health        -> {status, engine, model, queued}   (never waits for the model)
    GET  /docs             Swagger UI, served from the fastapi-offline package (no CDN)

Requests are batched: one worker thread owns the engine, and requests that wait for it with the
same settings go to the engine together in one call. Inputs are limited (characters, and
``n x max_new_tokens``); every error is JSON ``{"detail": message, "reason": kind}``. Proposals are
applied with the edit core and never executed here.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import typer
from pydantic import BaseModel, Field

from editlm.edits import DiffError, apply_diff_report
from editlm.generate.engines import Completion, Engine, EngineUnavailable, PromptTooLong, SamplingParams


@dataclass(frozen=True)
class Limits:
    max_chars: int = 200_000  # per source / prompt (a file of about 5,000 lines)
    max_tokens: int = 32_768  # n x max_new_tokens per request
    max_batch: int = 8  # requests per engine call
    window_s: float = 0.005  # how long the worker waits for more requests before a call


# -- request and response models -----------------------------------------------------------------


class EditRequest(BaseModel):
    name: str = Field("main.py", description="File name, as in <NME>.")
    source: str | None = Field(..., description="The file before; null for a new file (ADDFILE).")
    message: str = Field(..., description="What to change, as a commit message.")
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=1, le=8192)
    lines: tuple[int, int] | None = Field(None, description="Only lines A..B (1-based), as [A, B].")
    hunk_header: str | None = Field(None, description="Or an explicit '@@ -a,b +c,d @@'.")
    seed: int = 0


class ProposalOut(BaseModel):
    diff: str
    program: str | None = Field(description="The file after, or null when the diff does not apply.")
    error: str | None = Field(description="Why the diff does not apply (or the result does not parse).")
    logprob: float | None
    placements: list[str] = Field(description="Where each hunk landed, and how (exact, shifted ...).")
    finish: str


class EditResponse(BaseModel):
    proposals: list[ProposalOut]


class ApplyRequest(BaseModel):
    source: str
    diff: str


class ApplyResponse(BaseModel):
    program: str
    placements: list[str]


class CompleteRequest(BaseModel):
    prompt: str
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=1, le=8192)
    stop: list[str] = Field(default_factory=list)
    seed: int = 0
    prediction: str | None = Field(None, description="Text the output is expected to copy (speeds it up).")


class CompletionOut(BaseModel):
    text: str
    logprob: float | None
    tokens: int
    finish: str


class CompleteResponse(BaseModel):
    completions: list[CompletionOut]


class HealthResponse(BaseModel):
    status: str
    engine: str | None
    model: str
    queued: int


class PredictionPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class Prediction(BaseModel):
    type: Literal["content"] = "content"
    content: str | list[PredictionPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class OpenAICompletionRequest(BaseModel):
    """The fields of OpenAI's ``/v1/completions`` that editlm honours (others are ignored)."""

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1, le=8192)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=64)
    stop: str | list[str] | None = None
    seed: int | None = None
    prediction: Prediction | None = None


class OpenAIChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class OpenAICompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[OpenAIChoice]
    usage: OpenAIUsage


# -- batching -------------------------------------------------------------------------------------


class Batcher:
    """One worker thread owns the engine (engines are not re-entrant). Requests queue up; the
    worker takes the first, collects what else is waiting (up to ``max_batch``, ``window_s``),
    and sends each group with the same ``n`` and settings to the engine in one call."""

    def __init__(self, engine: Engine, limits: Limits):
        self.engine, self.limits = engine, limits
        self.jobs: queue.Queue = queue.Queue()
        self.calls = 0
        self.worker = threading.Thread(target=self._run, name="editlm-engine", daemon=True)
        self.worker.start()

    def submit(self, prompt: str, n: int, params: SamplingParams, prediction: str | None) -> Future:
        future: Future = Future()
        self.jobs.put((prompt, n, params, prediction, future))
        return future

    def close(self) -> None:
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.limits.window_s
            while len(batch) < self.limits.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)
                    break
                batch.append(job)
            groups: dict[tuple, list] = {}
            for job in batch:
                groups.setdefault((job[1], job[2]), []).append(job)
            for (n, params), jobs in groups.items():
                self._call(n, params, jobs)

    def _call(self, n: int, params: SamplingParams, jobs: list) -> None:
        prompts = [job[0] for job in jobs]
        predictions = [job[3] for job in jobs]
        self.calls += 1
        try:
            if any(predictions):
                results = self.engine.sample(prompts, n, params, predictions=predictions)
            else:
                results = self.engine.sample(prompts, n, params)
        except Exception as exc:  # every waiting request gets the engine's error
            for job in jobs:
                job[4].set_exception(exc)
            return
        for job, completions in zip(jobs, results, strict=True):
            job[4].set_result(completions)


# -- the app --------------------------------------------------------------------------------------


def _page() -> str:
    from importlib.resources import files

    return (files("editlm") / "assets" / "edit_page.html").read_text(encoding="utf-8")


def create_app(engine: Engine | None, model: str = "", limits: Limits | None = None):
    """The FastAPI app; ``engine`` None serves only the page, /v1/apply and /v1/health."""
    from fastapi import HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from fastapi_offline import FastAPIOffline
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or Limits()
    app = FastAPIOffline(title="editlm", description="Edits proposed by diff models.", redoc_url=None)
    batcher = Batcher(engine, limits) if engine is not None else None
    app.state.batcher = batcher
    reasons = {400: "bad request", 404: "not found", 405: "method not allowed", 413: "too large",
               422: "invalid request", 500: "engine error", 503: "unavailable"}  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "reason": reasons.get(exc.status_code, "error")},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors, "reason": "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{type(exc).__name__}: {exc}", "reason": "server error"}, status_code=500
        )

    def check_size(what: str, text: str | None) -> None:
        if text is not None and len(text) > limits.max_chars:
            raise HTTPException(
                413, f"{what} has {len(text):,} characters; this server takes {limits.max_chars:,}"
            )

    def check_budget(n: int, max_new_tokens: int) -> None:
        if n * max_new_tokens > limits.max_tokens:
            raise HTTPException(
                422,
                f"n x max_new_tokens = {n * max_new_tokens:,} exceeds this server's {limits.max_tokens:,}",
            )

    async def sample(prompt: str, n: int, params: SamplingParams, prediction: str | None) -> list[Completion]:
        if batcher is None:
            raise HTTPException(503, "this server was started without a model")
        try:
            return await asyncio.wrap_future(batcher.submit(prompt, n, params, prediction))
        except PromptTooLong as exc:
            raise HTTPException(413, str(exc)) from None
        except EngineUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        except Exception as exc:
            raise HTTPException(500, f"the engine failed: {type(exc).__name__}: {exc}") from None

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return _page()

    @app.get("/v1/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        queued = batcher.jobs.qsize() if batcher else 0
        return HealthResponse(status="ok", engine=engine.name if engine else None, model=model, queued=queued)

    @app.post("/v1/apply", response_model=ApplyResponse)
    async def apply(request: ApplyRequest) -> ApplyResponse:
        check_size("source", request.source)
        check_size("diff", request.diff)
        try:
            applied = apply_diff_report(request.source, request.diff)
        except DiffError as exc:
            raise HTTPException(422, str(exc)) from None
        return ApplyResponse(program=applied.text, placements=[str(p) for p in applied.placements])

    @app.post("/v1/edit", response_model=EditResponse)
    async def edit(request: EditRequest) -> EditResponse:
        from editlm.generate.edit import EditRequestError, edit_job, rank

        check_size("source", request.source)
        check_size("message", request.message)
        check_budget(request.n, request.max_new_tokens)
        params = SamplingParams(request.temperature, request.top_p, request.max_new_tokens, (), request.seed)
        try:
            job = edit_job(
                request.name, request.source, request.message, params, request.lines, request.hunk_header
            )
        except EditRequestError as exc:
            raise HTTPException(422, str(exc)) from None
        completions = await sample(job.prompt, request.n, job.params, request.source)
        proposals = rank(request.name, request.source or "", job.header, completions)
        return EditResponse(
            proposals=[
                ProposalOut(
                    diff=p.diff,
                    program=p.program,
                    error=p.error,
                    logprob=p.logprob,
                    placements=p.placements,
                    finish=p.finish,
                )
                for p in proposals
            ]
        )

    @app.post("/v1/complete", response_model=CompleteResponse)
    async def complete(request: CompleteRequest) -> CompleteResponse:
        check_size("prompt", request.prompt)
        check_size("prediction", request.prediction)
        check_budget(request.n, request.max_new_tokens)
        params = SamplingParams(
            request.temperature, request.top_p, request.max_new_tokens, tuple(request.stop), request.seed
        )
        completions = await sample(request.prompt, request.n, params, request.prediction)
        return CompleteResponse(
            completions=[
                CompletionOut(text=c.text, logprob=c.logprob, tokens=c.tokens, finish=c.finish)
                for c in completions
            ]
        )

    @app.post("/v1/completions", response_model=OpenAICompletionResponse)
    async def completions(request: OpenAICompletionRequest) -> OpenAICompletionResponse:
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if not prompts:
            raise HTTPException(422, "prompt is empty")
        prediction = request.prediction.text() if request.prediction else None
        for prompt in prompts:
            check_size("prompt", prompt)
        check_size("prediction", prediction)
        check_budget(request.n * len(prompts), request.max_tokens)
        stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
        params = SamplingParams(
            request.temperature, request.top_p, request.max_tokens, stop, request.seed or 0
        )
        results = await asyncio.gather(*(sample(p, request.n, params, prediction) for p in prompts))
        choices, generated = [], 0
        for group in results:
            for c in group:
                generated += c.tokens
                choices.append(OpenAIChoice(text=c.text, index=len(choices), finish_reason=c.finish))
        tokenizer = getattr(engine, "tokenizer", None)
        prompt_tokens = sum(len(tokenizer(p)["input_ids"]) for p in prompts) if tokenizer else 0
        return OpenAICompletionResponse(
            id=f"cmpl-{uuid.uuid4().hex[:24]}",
            created=int(time.time()),
            model=request.model or model,
            choices=choices,
            usage=OpenAIUsage(
                prompt_tokens=prompt_tokens,
                completion_tokens=generated,
                total_tokens=prompt_tokens + generated,
            ),
        )

    return app


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: Path = typer.Argument(
            None, help="A local Hugging Face causal LM directory (omit: the page and /v1/apply only)."
        ),
        engine: str = typer.Option("transformers", help="transformers, ctranslate2 or vllm."),
        host: str = typer.Option("127.0.0.1"),
        port: int = typer.Option(8000),
        device: str | None = typer.Option(None),
        compute_type: str = typer.Option("int8", help="CTranslate2 compute type."),
        max_chars: int = typer.Option(Limits.max_chars, help="Largest source / prompt, in characters."),
        max_tokens: int = typer.Option(Limits.max_tokens, help="Largest n x max_new_tokens per request."),
    ) -> None:
        """Serve edit proposals over HTTP: a page at /, the API at /v1 (see /docs)."""
        import uvicorn

        from editlm.generate.engines import load_engine

        try:
            eng = load_engine(engine, model, device=device, compute_type=compute_type) if model else None
        except EngineUnavailable as exc:
            raise typer.BadParameter(str(exc), param_hint="--engine") from None
        limits = Limits(max_chars=max_chars, max_tokens=max_tokens)
        uvicorn.run(create_app(eng, str(model or ""), limits), host=host, port=port)
