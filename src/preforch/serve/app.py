"""The FastAPI application: routes, typed bodies, access checks, and errors mapped to status codes.

Status codes: 422 for a request the server refuses (the body's ``detail`` names the field, as FastAPI's own
validation errors do), 401 without the configured key, 413 for a body over ``max_body_bytes``, 400 for a
Host header a loopback server does not answer to, 503 when the queue is full (``server_busy``, with
Retry-After) or the endpoint's model is not loaded (``unavailable``), 500 for anything unexpected (logged by
exception type and place only, never with the request). Routes are async: model work runs on the lanes'
threads (:mod:`preforch.serve.batching`), so the event loop stays free for /health and streams.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from preforch import __version__
from preforch.errors import PreforchError
from preforch.serve import errors as e
from preforch.serve import schemas as s
from preforch.serve.access import AccessGuard, add_cors, read_api_key
from preforch.serve.chat import chat_conversation, complete, plan_chat
from preforch.serve.disconnect import unless_client_leaves
from preforch.serve.engine import ServeEngine, unavailable
from preforch.serve.playground import playground_routes
from preforch.serve.preference import RequestError
from preforch.serve.streaming import stream_chat

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Prompt-aware multi-objective serving (PRO, the Preference Orchestrator): per-prompt objective weights, "
    "reward scores, and OpenAI-compatible chat completions (streamed or whole) chosen or conditioned under those "
    "weights. Extension fields: request `preference` {weights, blend, mode}, `strategy`, `best_of`, "
    "`return_candidates`; response `preference`."
)
#: Headers that keep proxies from buffering a stream.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return e.refusal(422, [{"type": "value_error", "loc": list(exc.loc), "msg": e.one_line(exc.message)}])


async def _internal(request: Request, exc: PreforchError) -> JSONResponse:
    # input is checked before model work, so a PreforchError here is the server's fault
    e.log_internal(exc, request.url.path)
    return e.internal_error_response(exc)


def create_app(engine: ServeEngine, api_key: str | None = None) -> FastAPI:
    """The application around a loaded :class:`ServeEngine`. ``api_key`` is the bearer key /v1 routes require
    ("" = none; None = read it from the configured environment variable or file)."""
    config = engine.config
    key = read_api_key(config) if api_key is None else (api_key or None)
    app = FastAPI(title="preforch", version=__version__, description=DESCRIPTION)
    app.state.engine = engine
    app.add_exception_handler(RequestValidationError, e.invalid_request)
    app.add_exception_handler(StarletteHTTPException, e.http_error)
    app.add_exception_handler(e.ServeError, e.serve_error)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(PreforchError, _internal)
    # outermost last: CatchAll → CORS → AccessGuard → routes
    app.add_middleware(AccessGuard, config=config, api_key=key)
    add_cors(app, config)
    app.add_middleware(e.CatchAll)
    if config.playground:
        app.include_router(playground_routes())

    @app.get("/health", response_model=s.HealthResponse, summary="readiness and what is loaded")
    async def health() -> s.HealthResponse:
        return engine.health(auth=bool(key))

    @app.get("/v1/models", response_model=s.ModelList, summary="the served model (OpenAI format)")
    async def models() -> s.ModelList:
        return s.ModelList(data=[s.ModelCard(id=config.model_name, created=engine.created)])

    @app.post("/v1/weights", response_model=s.WeightsResponse, summary="per-prompt objective weights")
    async def weights(req: s.WeightsRequest) -> s.WeightsResponse:
        return await engine.weights(req)

    @app.post("/v1/score", response_model=s.ScoreResponse,
              summary="raw and normalised scores of (prompt, response) pairs and R under the weights")
    async def score(req: s.ScoreRequest) -> s.ScoreResponse:
        return await engine.score(req)

    @app.post("/v1/chat/completions", response_model=s.ChatCompletionResponse,
              summary="OpenAI-compatible chat completion with prompt-aware weighting (stream: server-sent events)")
    async def chat(req: s.ChatCompletionRequest, request: Request) -> Response:
        if engine.policy is None:
            raise unavailable("no policy is loaded (setting 'policy' is null)")
        plan = plan_chat(req, engine)
        conversation = chat_conversation(req.messages, engine)

        async def answer() -> Response:
            if plan.stream:
                events = await stream_chat(engine, req, plan, conversation)
                return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
            done = await complete(engine, req, plan, conversation)
            return JSONResponse(done.model_dump(mode="json"))

        # a client that leaves stops its generation within one decoding step (serve/disconnect.py)
        return await unless_client_leaves(request, plan.cancel, answer())

    return app
