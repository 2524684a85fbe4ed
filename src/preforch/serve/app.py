"""The FastAPI application: routes, typed bodies, and errors mapped to status codes.

Status codes: 422 for a request the server refuses (the body's ``detail`` names the field, as FastAPI's own
validation errors do), 503 when the queue is full or a model is not loaded, 500 for anything unexpected
(logged by exception type only, never with the request). Model work runs in sync routes, which Starlette
runs in its thread pool, so the event loop stays free for /health while a generation runs.
"""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from preforch import __version__
from preforch.errors import PreforchError
from preforch.serve import schemas as s
from preforch.serve.engine import ServeEngine, ServerBusy, Unavailable
from preforch.serve.preference import RequestError

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Prompt-aware multi-objective serving (PRO, the Preference Orchestrator): per-prompt objective weights, "
    "reward scores, and OpenAI-compatible chat completions ranked under those weights. Extension fields: "
    "request `preference` {weights, blend, mode}, `strategy`, `best_of`; response `preference`."
)


def _guard(fn, *args):
    """Run one engine call, turning its failures into HTTP errors (the worker never dies on a request)."""
    try:
        return fn(*args)
    except RequestError as err:
        raise RequestValidationError([{"type": "value_error", "loc": err.loc, "msg": err.message,
                                       "input": None}]) from None
    except ServerBusy as err:
        raise HTTPException(status_code=503, detail=f"server busy: {err}", headers={"Retry-After": "1"}) from None
    except Unavailable as err:
        raise HTTPException(status_code=503, detail=str(err)) from None
    except PreforchError as err:  # input is checked before model work, so this is the server's fault
        log.error("internal error %s: %s", type(err).__name__, err)
        raise HTTPException(status_code=500, detail=f"internal error ({type(err).__name__})") from None
    except Exception as err:  # noqa: BLE001 - a request must never take the worker down
        frame = traceback.extract_tb(err.__traceback__)[-1]
        # Type and place only: exception messages can quote the request's text.
        log.error("internal error %s at %s:%s", type(err).__name__, frame.filename, frame.lineno)
        raise HTTPException(status_code=500, detail=f"internal error ({type(err).__name__})") from None


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part != "body")


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body (``detail``, every error with its ``loc``) plus an OpenAI-style ``error`` object, whose
    message the official client puts in its exception text."""
    errors = jsonable_encoder(exc.errors())
    first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request"}
    message = "; ".join(f"{_field(e.get('loc', ())) or 'body'}: {e.get('msg', '')}" for e in errors[:5])
    return JSONResponse(status_code=422, content={
        "detail": errors,
        "error": {"message": message, "type": "invalid_request_error", "param": _field(first.get("loc", ())) or None,
                  "code": "invalid_value"}})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = "server_busy" if exc.status_code == 503 else "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                        content={"detail": exc.detail, "error": {"message": str(exc.detail), "type": kind,
                                                                 "param": None, "code": None}})


def create_app(engine: ServeEngine) -> FastAPI:
    """The application around a loaded :class:`ServeEngine`."""
    app = FastAPI(title="preforch", version=__version__, description=DESCRIPTION)
    app.state.engine = engine
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/health", response_model=s.HealthResponse, summary="readiness and what is loaded")
    async def health() -> s.HealthResponse:
        return engine.health()

    @app.get("/v1/models", response_model=s.ModelList, summary="the served model (OpenAI format)")
    async def models() -> s.ModelList:
        return s.ModelList(data=[s.ModelCard(id=engine.config.model_name, created=engine.created)])

    @app.post("/v1/weights", response_model=s.WeightsResponse, summary="per-prompt objective weights")
    def weights(req: s.WeightsRequest) -> s.WeightsResponse:
        return _guard(engine.weights, req)

    @app.post("/v1/score", response_model=s.ScoreResponse,
              summary="raw and normalised scores of (prompt, response) pairs and R under the weights")
    def score(req: s.ScoreRequest) -> s.ScoreResponse:
        return _guard(engine.score, req)

    @app.post("/v1/chat/completions", response_model=s.ChatCompletionResponse,
              summary="OpenAI-compatible chat completion with prompt-aware weighting")
    def chat(req: s.ChatCompletionRequest) -> s.ChatCompletionResponse:
        return _guard(engine.chat, req)

    return app
