"""Hostile input (issue 12, the server half): every case ends in a one-line error naming the field, or the
correct result; never a traceback, a 500, a hang, or the request's text in the log.

Bodies are sent as raw bytes where JSON itself is the attack (NaN, Infinity, lone surrogates, deep nesting).
"""

from __future__ import annotations

import logging

import httpx
import pytest

SECRET = "quokka-secret-5512"


def chat_body(**fields) -> dict:
    body = {"model": "m", "messages": [{"role": "user", "content": f"{SECRET} tell me"}], "max_tokens": 3,
            "strategy": "sample"}
    body.update(fields)
    return body


def raw(text: str) -> bytes:
    """A JSON text as bytes, kept exactly as written (NaN, escapes, nesting)."""
    return text.encode("utf-8")


S = SECRET
#: (case id, path, body: dict sent as JSON or bytes sent as is, expected status, field the error must name;
#: for a 200 the field is None).
CASES = [
    ("temperature NaN", "/v1/chat/completions",
     raw(f'{{"model": "m", "messages": [{{"role": "user", "content": "{S}"}}], "temperature": NaN}}'), 422,
     "temperature"),
    ("temperature Infinity", "/v1/chat/completions",
     raw(f'{{"model": "m", "messages": [{{"role": "user", "content": "{S}"}}], "temperature": Infinity}}'), 422,
     "temperature"),
    ("top_p -Infinity", "/v1/chat/completions",
     raw(f'{{"model": "m", "messages": [{{"role": "user", "content": "{S}"}}], "top_p": -Infinity}}'), 422,
     "top_p"),
    ("blend NaN", "/v1/weights", raw(f'{{"prompts": ["{S}"], "preference": {{"weights": [1, 1], "blend": NaN}}}}'),
     422, "preference.blend"),
    ("weight NaN", "/v1/weights", raw(f'{{"prompts": ["{S}"], "preference": {{"weights": [NaN, 1]}}}}'), 422,
     "preference.weights"),
    ("weight Infinity", "/v1/weights", raw(f'{{"prompts": ["{S}"], "preference": {{"weights": [1e400, 1]}}}}'), 422,
     "preference.weights"),
    ("huge finite weights", "/v1/weights", {"prompts": [S], "preference": {"weights": [1e308, 1e308]}}, 200, None),
    ("huge finite weights by name", "/v1/score",
     {"pairs": [{"prompt": S, "response": "ok"}], "preference": {"weights": {"concise": 1e308, "positive": 1e308}}},
     200, None),
    ("huge blend weights", "/v1/weights",
     {"prompts": [S], "preference": {"weights": [1.7e308, 1e-300], "blend": 0.5}}, 200, None),
    ("lone surrogate in a prompt", "/v1/weights", raw(f'{{"prompts": ["{S} \\ud800"]}}'), 422, "prompts.0"),
    ("lone surrogate in a message", "/v1/chat/completions",
     raw(f'{{"model": "m", "messages": [{{"role": "user", "content": "{S} \\udfff"}}], "max_tokens": 2}}'), 422,
     "messages.0.content"),
    ("lone surrogate in a response", "/v1/score",
     raw(f'{{"pairs": [{{"prompt": "{S}", "response": "x \\ud83d"}}]}}'), 422, "pairs.0.response"),
    ("lone surrogate in stop", "/v1/chat/completions",
     raw(f'{{"model": "m", "messages": [{{"role": "user", "content": "{S}"}}], "stop": ["\\ud800"]}}'), 422, "stop"),
    ("lone surrogate in a message-list prompt", "/v1/weights",
     raw(f'{{"prompts": [[{{"role": "user", "content": "{S}\\udc00"}}]]}}'), 422, "prompts.0"),
    ("empty prompt", "/v1/weights", {"prompts": [""]}, 422, "prompts.0"),
    ("blank prompt", "/v1/weights", {"prompts": ["  \n\t "]}, 422, "prompts.0"),
    ("empty prompt to score", "/v1/score", {"pairs": [{"prompt": "", "response": S}]}, 422, "pairs.0.prompt"),
    ("empty last user turn", "/v1/chat/completions",
     chat_body(messages=[{"role": "system", "content": S}, {"role": "user", "content": ""}]), 422, "messages"),
    ("20,000 empty messages", "/v1/chat/completions",
     chat_body(messages=[{"role": "user", "content": ""}] * 20_000), 422, "messages"),
    ("2,000 messages in one prompt", "/v1/weights",
     {"prompts": [[{"role": "user", "content": "a"}] * 2_000]}, 422, "prompts.0"),
    ("body over the size limit", "/v1/weights", {"prompts": [S, "x" * 2_000_000]}, 413, "body"),
    ("invalid JSON", "/v1/weights", raw(f'{{"prompts": ["{S}"'), 422, "body"),
    ("JSON that is not an object", "/v1/weights", raw(f'["{S}"]'), 422, "body"),
    ("deeply nested JSON", "/v1/weights", raw('{"prompts": ' + "[" * 50_000 + "]" * 50_000 + "}"), 422, "body"),
    ("prompts as a string", "/v1/weights", {"prompts": S}, 422, "prompts"),
    ("prompt as a number", "/v1/weights", {"prompts": [12]}, 422, "prompts.0"),
    ("max_tokens enormous", "/v1/chat/completions", chat_body(max_tokens=10**30), 422, "max_tokens"),
    ("max_tokens fractional", "/v1/chat/completions", chat_body(max_tokens=1.5), 422, "max_tokens"),
    ("best_of enormous", "/v1/chat/completions", chat_body(strategy="best_of_n", best_of=10**20), 422, "best_of"),
    ("n zero", "/v1/chat/completions", chat_body(n=0), 422, "n"),
    ("no messages", "/v1/chat/completions", chat_body(messages=[]), 422, "messages"),
    ("tool message", "/v1/chat/completions",
     chat_body(messages=[{"role": "tool", "content": "x"}, {"role": "user", "content": S}]), 422, "messages.0"),
    ("image content part", "/v1/chat/completions",
     chat_body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]), 422,
     "messages.0.content"),
    ("temperature as text", "/v1/chat/completions", chat_body(temperature="hot"), 422, "temperature"),
    ("too many stop strings", "/v1/chat/completions", chat_body(stop=[f"s{i}" for i in range(50)]), 422, "stop"),
    ("a million weights", "/v1/weights", {"prompts": [S], "preference": {"weights": [1] * 100_000}}, 422,
     "preference.weights"),
    ("unknown preference field", "/v1/weights", {"prompts": [S], "preference": {"weight": [1, 1]}}, 422,
     "preference.weight"),
    ("enormous seed", "/v1/chat/completions", chat_body(seed=2**80), 200, None),
    ("negative seed", "/v1/chat/completions", chat_body(seed=-5), 200, None),
    ("NUL and control characters", "/v1/weights", {"prompts": [f"{S}\u0000\u0007\u202e"]}, 200, None),
    ("emoji and combining marks", "/v1/chat/completions",
     chat_body(messages=[{"role": "user", "content": "🦘 e\u0301 " * 20}]), 200, None),
]


def refusal_names(response, field: str) -> None:
    """A JSON error whose one-line message and ``param`` name ``field``."""
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    error = response.json()["error"]
    assert "\n" not in error["message"], error
    assert error["param"] is not None and error["param"].startswith(field), error
    assert field.split(".")[0] in error["message"], error


def logged_text(caplog) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


@pytest.mark.parametrize("case, path, body, status, field", CASES, ids=[c[0] for c in CASES])
def test_hostile_request(live_server, caplog, case, path, body, status, field):
    caplog.set_level(logging.DEBUG)
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) \
        else {"json": body}
    response = httpx.post(f"{live_server}{path}", timeout=60, **kwargs)
    assert response.status_code == status, response.text[:300]
    if field is not None:
        refusal_names(response, field)
    else:
        assert response.json()
    assert SECRET not in response.text or status == 200  # refusals never echo the request
    text = logged_text(caplog)
    assert SECRET not in text and "Traceback" not in text, text[-2000:]


def test_missing_policy_is_not_labelled_busy(serve_config, engine):
    """A server without a policy answers chat with 503 'unavailable', never 'server_busy'."""
    import dataclasses

    from fastapi.testclient import TestClient

    from preforch.serve.app import create_app
    from preforch.serve.engine import ServeEngine

    bare = ServeEngine(dataclasses.replace(serve_config, policy=None, strategy="sample"), engine.adapter, None)
    with TestClient(create_app(bare), base_url="http://localhost") as client:
        response = client.post("/v1/chat/completions", json=chat_body())
        assert response.status_code == 503
        assert response.json()["error"]["type"] != "server_busy"
        assert "policy" in response.json()["error"]["message"]
        response = client.post("/v1/score", json={"pairs": [{"prompt": "a", "response": "b"}]})
        assert response.status_code == 503 and response.json()["error"]["type"] != "server_busy"
