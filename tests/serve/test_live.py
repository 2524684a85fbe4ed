"""The real server (uvicorn on a free loopback port) with the official `openai` client and plain HTTP."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

SECRET = "zebra-secret-7731"


@pytest.fixture(scope="module")
def oai(live_server):
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="not-needed", max_retries=0, timeout=60)


def test_openai_client_plain_completion(oai):
    completion = oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello there"}],
                                             max_tokens=5, temperature=0.8, top_p=0.95, seed=11,
                                             extra_body={"strategy": "sample"})
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.model == "tiny" and completion.choices[0].message.content
    assert completion.usage.completion_tokens <= 5
    info = completion.model_extra["preference"]
    assert info["strategy"] == "sample" and info["mode"] == "adapter"
    assert set(info["weights"]) == {"concise", "positive"}


def test_openai_client_preference_extension(oai):
    completion = oai.chat.completions.create(
        model="tiny", messages=[{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
        max_completion_tokens=6, seed=2,
        extra_body={"preference": {"weights": [1, 3], "blend": 0.5}, "strategy": "best_of_n", "best_of": 2})
    info = completion.model_extra["preference"]
    assert info["mode"] == "blend" and info["blend"] == 0.5 and info["best_of"] == 2
    inferred = info["inferred"]
    assert info["weights"]["positive"] == pytest.approx(0.5 * 0.75 + 0.5 * inferred["positive"], abs=1e-6)
    assert info["reward"] == max(info["candidate_rewards"])
    assert set(info["scores"]) == {"concise", "positive"}


def test_openai_client_sees_422_with_the_field(oai):
    with pytest.raises(openai.UnprocessableEntityError) as err:
        oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                    extra_body={"preference": {"weights": [-1, 1]}})
    assert "non-negative" in str(err.value) and "weights" in str(err.value)
    with pytest.raises(openai.UnprocessableEntityError) as err:
        oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=999)
    assert "max_tokens" in str(err.value)


def test_openai_client_lists_the_model(oai):
    assert [m.id for m in oai.models.list()] == ["tiny"]


def test_concurrent_clients_all_succeed(live_server, oai):
    def ask_chat(i: int) -> str:
        done = oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": f"question {i}"}],
                                           max_tokens=4, seed=i, extra_body={"best_of": 2})
        return done.choices[0].message.content

    def ask_weights(i: int) -> int:
        response = httpx.post(f"{live_server}/v1/weights", json={"prompts": [f"prompt {i}", "other"]}, timeout=60)
        return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        chats = [pool.submit(ask_chat, i) for i in range(6)]
        weights = [pool.submit(ask_weights, i) for i in range(10)]
        health = [pool.submit(httpx.get, f"{live_server}/health") for _ in range(4)]
        assert all(isinstance(f.result(), str) for f in chats)
        assert [f.result() for f in weights] == [200] * 10
        assert all(f.result().status_code == 200 for f in health)


def test_request_bodies_are_not_logged(live_server, caplog):
    caplog.set_level(logging.DEBUG)
    httpx.post(f"{live_server}/v1/weights", json={"prompts": [SECRET]}, timeout=60)
    httpx.post(f"{live_server}/v1/score", json={"pairs": [{"prompt": SECRET, "response": SECRET}]}, timeout=60)
    httpx.post(f"{live_server}/v1/chat/completions", timeout=60,
               json={"model": "m", "messages": [{"role": "user", "content": SECRET}], "max_tokens": 2})
    httpx.post(f"{live_server}/v1/weights", json={"prompts": [SECRET] * 100}, timeout=60)  # a 422
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/weights" in logged and "422" in logged  # the access log is captured ...
    assert SECRET not in logged  # ... and never carries a body


def test_server_binds_loopback_only(live_server):
    assert live_server.startswith("http://127.0.0.1:")
