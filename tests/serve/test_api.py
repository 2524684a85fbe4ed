"""The HTTP API through FastAPI's test client, against tiny models: shapes, values, limits and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from preforch.weighting import user_vector

PROMPTS = ["how do I sort a list in python", "tell me a joke about cats", "write a poem about rain"]


def detail_locs(response) -> list[list]:
    return [e["loc"] for e in response.json()["detail"]]


def test_health(client, engine):
    body = client.get("/health").json()
    assert body["status"] == "ready"
    assert body["objectives"] == ["concise", "positive"]
    assert body["adapter"] == engine.config.adapter
    assert body["policy"] == engine.config.policy
    assert body["scorers"] == ["rule:concise:neg_log1p_words:v1", engine.scorer.scorers[1].identity()]
    assert body["limits"]["max_best_of"] == 4


def test_openapi_schema_lists_every_route(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/v1/weights", "/v1/score", "/v1/chat/completions", "/v1/models"} <= set(schema["paths"])
    names = set(schema["components"]["schemas"])
    assert {"Preference", "ChatCompletionRequest", "ChatCompletionResponse", "PreferenceInfo"} <= names


def test_weights_are_the_adapters(client, engine):
    response = client.post("/v1/weights", json={"prompts": PROMPTS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objectives"] == ["concise", "positive"] and body["mode"] == "adapter"
    got = np.array([[row["weights"][k] for k in body["objectives"]] for row in body["data"]])  # [N, K]
    expected = engine.adapter.predict_weights(PROMPTS)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)
    assert np.ptp(got[:, 0]) > 1e-3  # different prompts, different weights


def test_weights_with_user_preference(client, engine):
    inferred = engine.adapter.predict_weights(PROMPTS[:2])
    fixed = client.post("/v1/weights", json={"prompts": PROMPTS[:2], "preference": {"weights": [3, 1]}}).json()
    assert fixed["mode"] == "fixed"
    assert fixed["data"][0]["weights"] == pytest.approx({"concise": 0.75, "positive": 0.25})
    blend = client.post("/v1/weights", json={"prompts": PROMPTS[:2],
                                             "preference": {"weights": {"positive": 1}, "blend": 0.2}}).json()
    assert blend["mode"] == "blend"
    for row, w in zip(blend["data"], inferred):
        assert row["weights"]["positive"] == pytest.approx(0.2 + 0.8 * w[1], abs=1e-6)
        assert row["inferred"]["positive"] == pytest.approx(w[1], abs=1e-6)


def test_score_matches_scorers_normaliser_and_weights(client, engine):
    pairs = [{"prompt": "hi", "response": "a b c"}, {"prompt": "hello", "response": "I love this wonderful day"}]
    body = client.post("/v1/score", json={"pairs": pairs, "preference": {"weights": [1, 1]}}).json()
    raw = np.array([[d["raw"][k] for k in body["objectives"]] for d in body["data"]])
    assert raw[0, 0] == pytest.approx(-math.log1p(3)) and raw[1, 0] == pytest.approx(-math.log1p(5))
    assert raw[1, 1] > 0.5 > raw[0, 1]  # VADER: "love ... wonderful" is positive
    norm = engine.adapter.normalizer.transform(raw)
    for d, n in zip(body["data"], norm):
        assert [d["normalized"][k] for k in body["objectives"]] == pytest.approx(n.tolist(), abs=1e-5)
        assert d["reward"] == pytest.approx(0.5 * n[0] + 0.5 * n[1], abs=1e-5)
    auto = client.post("/v1/score", json={"pairs": pairs}).json()
    w = engine.adapter.predict_weights(["hi", "hello"])
    assert auto["data"][0]["reward"] == pytest.approx(float(w[0] @ norm[0]), abs=1e-5)


def chat(client, **fields):
    body = {"model": "anything", "messages": [{"role": "user", "content": "tell me about the sea"}]}
    body.update(fields)
    return client.post("/v1/chat/completions", json=body)


def test_chat_plain_sampling_is_a_valid_openai_completion(client):
    from openai.types.chat import ChatCompletion

    response = chat(client, strategy="sample", max_tokens=5, seed=3)
    assert response.status_code == 200, response.text
    completion = ChatCompletion.model_validate(response.json())
    assert completion.model == "tiny" and completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 5
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    info = response.json()["preference"]
    assert info["strategy"] == "sample" and info["best_of"] == 1 and info["mode"] == "adapter"
    assert info["scores"] is None
    assert sum(info["weights"].values()) == pytest.approx(1.0)
    again = chat(client, strategy="sample", max_tokens=5, seed=3).json()
    assert again["choices"][0]["message"]["content"] == choice.message.content  # same seed, same reply


def test_chat_best_of_n_reports_the_chosen_replys_scores(client, engine):
    response = chat(client, max_tokens=8, seed=1, best_of=4, preference={"weights": {"concise": 1.0}})
    assert response.status_code == 200, response.text
    body = response.json()
    info, text = body["preference"], body["choices"][0]["message"]["content"]
    assert info["strategy"] == "best_of_n" and info["best_of"] == 4 and info["mode"] == "fixed"
    assert info["weights"] == {"concise": 1.0, "positive": 0.0}
    assert len(info["candidate_rewards"]) == 4
    assert info["reward"] == max(info["candidate_rewards"])
    assert info["candidate_rewards"][info["chosen"]] == info["reward"]
    assert info["raw_scores"]["concise"] == pytest.approx(-math.log1p(len(text.split())))
    norm = engine.adapter.normalizer.transform(np.array([[info["raw_scores"]["concise"],
                                                          info["raw_scores"]["positive"]]]))[0]
    assert info["scores"]["concise"] == pytest.approx(float(norm[0]), abs=1e-5)
    assert info["reward"] == pytest.approx(float(norm[0]), abs=1e-5)  # weights (1, 0)


def test_chat_uses_server_default_strategy_and_multi_turn_messages(client):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": [{"type": "text", "text": "how are you"}]}]
    body = chat(client, messages=messages, max_completion_tokens=4, seed=0).json()
    assert body["preference"]["strategy"] == "best_of_n" and body["preference"]["best_of"] == 3  # config
    assert body["usage"]["completion_tokens"] <= 4
    assert body["usage"]["prompt_tokens"] > 10  # all four turns reached the policy


def test_stop_strings_cut_the_reply(client):
    base = chat(client, strategy="sample", max_tokens=12, seed=5, temperature=0).json()
    text = base["choices"][0]["message"]["content"]
    word = text.split()[len(text.split()) // 2]
    cut = chat(client, strategy="sample", max_tokens=12, seed=5, temperature=0, stop=[word]).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.find(word)]
    assert cut["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("fields, loc", [
    ({"max_tokens": 17}, ["body", "max_tokens"]),
    ({"max_completion_tokens": 100}, ["body", "max_completion_tokens"]),
    ({"best_of": 5}, ["body", "best_of"]),
    ({"strategy": "sample", "best_of": 2}, ["body", "best_of"]),
    ({"n": 2}, ["body", "n"]),
    ({"strategy": "conditioned"}, ["body", "strategy"]),  # no conditioned policy loaded
    ({"return_candidates": True, "strategy": "sample"}, ["body", "return_candidates"]),
    ({"stop": ["a", "b", "c", "d", "e"]}, ["body", "stop"]),
    ({"messages": [{"role": "user", "content": "x"}] * 17}, ["body", "messages"]),
    ({"temperature": 2.5}, ["body", "temperature"]),
    ({"temperature": 0, "best_of": 2}, ["body", "temperature"]),
    ({"messages": [{"role": "user", "content": "x" * 401}]}, ["body", "messages"]),
    ({"messages": [{"role": "system", "content": "only a system turn"}]}, ["body", "messages"]),
    ({"preference": {"weights": [1, -1]}}, ["body", "preference", "weights"]),
    ({"preference": {"weights": [1, 1, 1]}}, ["body", "preference", "weights"]),
    ({"preference": {"weights": [0, 0]}}, ["body", "preference", "weights"]),
    ({"preference": {"weights": {"funny": 1}}}, ["body", "preference", "weights"]),
    ({"preference": {"mode": "auto", "weights": [1, 0]}}, ["body", "preference", "weights"]),
    ({"preference": {"mode": "blend"}}, ["body", "preference", "weights"]),
    ({"preference": {"weights": [1, 0], "blend": 1.5}}, ["body", "preference", "blend"]),
    ({"preference": {"weights": [1, 0], "mode": "fixed", "blend": 0.5}}, ["body", "preference", "blend"]),
])
def test_chat_refusals_name_the_field(client, fields, loc):
    response = chat(client, **fields)
    assert response.status_code == 422, response.text
    assert loc in [list(x[: len(loc)]) for x in detail_locs(response)], response.json()


@pytest.mark.parametrize("path, body, loc", [
    ("/v1/weights", {"prompts": ["p"] * 9}, ["body", "prompts"]),
    ("/v1/weights", {"prompts": ["ok", "y" * 401]}, ["body", "prompts", 1]),
    ("/v1/weights", {"prompts": []}, ["body", "prompts"]),
    ("/v1/weights", {"prompts": ["a"], "preference": {"weights": [-1, 2]}}, ["body", "preference", "weights"]),
    ("/v1/score", {"pairs": [{"prompt": "a", "response": "b"}] * 9}, ["body", "pairs"]),
    ("/v1/score", {"pairs": [{"prompt": "a", "response": "z" * 401}]}, ["body", "pairs", 0, "response"]),
    ("/v1/score", {"pairs": [{"prompt": "a"}]}, ["body", "pairs", 0, "response"]),
])
def test_batch_endpoint_refusals_name_the_field(client, path, body, loc):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert loc in [list(x[: len(loc)]) for x in detail_locs(response)], response.json()


def test_user_vector_normalises_and_orders():
    np.testing.assert_allclose(user_vector({"b": 1, "a": 3}, ["a", "b"]), [0.75, 0.25])
    np.testing.assert_allclose(user_vector({"b": 2}, ["a", "b"]), [0.0, 1.0])


def test_full_queue_answers_503(engine, client):
    import threading

    lane = engine.encoder_lane
    old = lane.max_queue
    entered, release = threading.Event(), threading.Event()

    def hold(items):
        entered.set()
        release.wait(10)
        return items

    blocker = lane.submit(object(), hold, [None])  # the worker is busy with this ...
    assert entered.wait(10)
    lane.max_queue = 1
    queued = lane.submit(object(), lambda items: items, [None])  # ... and this one waits: the queue is full
    try:
        response = client.post("/v1/weights", json={"prompts": ["a"]})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "server_busy" and response.headers["retry-after"] == "1"
    finally:
        lane.max_queue = old
        release.set()
    assert blocker.result(10) == [None] and queued.result(10) == [None]
    assert client.post("/v1/weights", json={"prompts": ["a"]}).status_code == 200
