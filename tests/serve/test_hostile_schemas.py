"""Property-based hostile input (issue 12): arbitrary JSON in every field of the request schemas ends in a
200 or a JSON refusal naming a field (422, 413), never a 500, a traceback or the request's text in the log."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SECRET = "wombat-secret-2207"

text = st.one_of(st.text(max_size=12), st.just(SECRET), st.sampled_from(["", " ", "\ud800", "\x00", "🦘"]))
number = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True))
key = st.text(max_size=8)  # keys are echoed as field names in refusals; values never are
scalar = st.one_of(st.none(), st.booleans(), number, text)
json_value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(key, inner, max_size=3)), max_leaves=8)
message = st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool"]), text),
                                 "content": st.one_of(text, json_value)})
prompt = st.one_of(text, st.lists(message, max_size=3), json_value)
preference = st.one_of(st.none(), json_value, st.fixed_dictionaries(
    {}, optional={"weights": st.one_of(st.lists(number, max_size=3), st.dictionaries(key, number, max_size=3),
                                       json_value),
                  "blend": st.one_of(number, json_value), "mode": st.one_of(st.sampled_from(
                      ["auto", "adapter", "fixed", "blend", "conditioned"]), text)}))

weights_body = st.one_of(json_value, st.fixed_dictionaries({"prompts": st.one_of(st.lists(prompt, max_size=3),
                                                                                 json_value)},
                                                           optional={"preference": preference}))
score_body = st.fixed_dictionaries({"pairs": st.one_of(
    st.lists(st.fixed_dictionaries({"prompt": prompt, "response": st.one_of(text, json_value)}), max_size=3),
    json_value)}, optional={"preference": preference})
chat_body = st.fixed_dictionaries(
    {"model": st.one_of(text, json_value), "messages": st.one_of(st.lists(message, min_size=1, max_size=3),
                                                                 json_value)},
    optional={"max_tokens": st.one_of(st.integers(-3, 20), number, json_value),
              "temperature": st.one_of(number, json_value), "top_p": number, "seed": number,
              "stop": st.one_of(text, st.lists(text, max_size=5), json_value),
              "n": st.one_of(st.integers(-1, 3), json_value), "strategy": st.one_of(
                  st.sampled_from(["sample", "best_of_n", "conditioned"]), json_value),
              "best_of": st.one_of(st.integers(-1, 5), json_value), "preference": preference,
              "stream": st.one_of(st.booleans(), json_value)})


@pytest.fixture(scope="module")
def safe_client(engine):
    from fastapi.testclient import TestClient

    from preforch.serve.app import create_app

    with TestClient(create_app(engine), raise_server_exceptions=False, base_url="http://localhost") as c:
        yield c


def post(client, path: str, body) -> None:
    import json

    # allow_nan: hostile clients send NaN/Infinity, which Python's JSON reader (and so the server's) accepts.
    payload = json.dumps(body, allow_nan=True, ensure_ascii=True)
    response = client.post(path, content=payload.encode(), headers={"content-type": "application/json"})
    assert response.status_code in (200, 413, 422, 503), (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith(("application/json", "text/event-stream"))
    if response.status_code != 200:
        error = response.json()["error"]
        assert "\n" not in error["message"] and error["param"], error
        assert SECRET not in response.text


HYPOTHESIS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.parametrize("path, strategy", [("/v1/weights", weights_body), ("/v1/score", score_body),
                                            ("/v1/chat/completions", chat_body)], ids=["weights", "score", "chat"])
def test_arbitrary_requests_never_fail_the_server(safe_client, caplog, path, strategy):
    caplog.set_level(logging.DEBUG)

    @HYPOTHESIS
    @given(body=strategy)
    def check(body):
        post(safe_client, path, body)

    check()
    logged = "\n".join(logging.Formatter("%(message)s").format(r) for r in caplog.records)
    assert SECRET not in logged and "Traceback" not in logged
