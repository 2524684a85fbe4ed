"""Running the app with uvicorn: one worker process, loopback by default, access log without bodies."""

from __future__ import annotations

import logging
import socket

import uvicorn

from preforch.serve.access import is_loopback, read_api_key
from preforch.serve.access_log import route_patterns
from preforch.serve.app import create_app
from preforch.serve.config import ServeConfig
from preforch.serve.engine import ServeEngine
from preforch.serve.timeouts import timed_protocol

log = logging.getLogger(__name__)

#: uvicorn's access line is method, path (without its query string), HTTP version and status; never a body.
ACCESS_FORMAT = '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s'


def log_config(level: str, routes: list[str] | None = None) -> dict:
    """uvicorn's logging set-up, spelled out so nothing but the access line is written per request. ``routes``:
    path patterns the access line may show (others show as ``<other path>``); None = any path."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
            "access": {"()": "preforch.serve.access_log.PathOnlyAccessFormatter", "fmt": ACCESS_FORMAT,
                       "use_colors": False, "routes": routes},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def uvicorn_config(app, config: ServeConfig, port: int | None = None, install_logging: bool = True):
    """A ``uvicorn.Config`` for ``app`` with the server settings (one worker; HTTP/1.1 keep-alive; deadlines for
    a request's headers and body, :mod:`preforch.serve.timeouts`)."""
    return uvicorn.Config(app, host=config.host, port=config.port if port is None else port, workers=1,
                          access_log=config.access_log, log_level=config.log_level,
                          log_config=log_config(config.log_level, route_patterns(app)) if install_logging else None,
                          server_header=False, proxy_headers=False, timeout_keep_alive=config.keep_alive_s,
                          http=timed_protocol(config.header_timeout_s, config.body_timeout_s))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(config: ServeConfig, engine: ServeEngine | None = None) -> None:
    """Load the models (unless ``engine`` is given), then serve until interrupted."""
    key = read_api_key(config)  # before loading models: a bad key file fails fast
    if not is_loopback(config.host) and not key:
        log.warning("binding %s: the server is reachable from other machines and needs no API key (set %s or "
                    "api_key_file)", config.host, config.api_key_env or "api_key_env")
    engine = engine or ServeEngine.load(config)
    server = uvicorn.Server(uvicorn_config(create_app(engine, api_key=key or ""), config))
    log.info("serving %s on http://%s:%d (docs at /docs, schema at /openapi.json)", config.model_name,
             config.host, config.port)
    try:
        server.run()
    finally:
        engine.close()
