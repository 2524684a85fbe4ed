"""/v1/weights and chat report the adapter's confidence and the fallback share λ, and apply the calibrated fallback
the server (or the request) asks for, through the one resolver (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
from serve_models import SCORERS

FAMILIAR = ["keep it short please", "a short answer", "be brief", "short and sweet", "tell me briefly",
            "one line only", "answer in a few words", "summarise this quickly"]
ODD = ["zqx vvv 9931 ##", "Ünïcödé ßpam ¿¿¿", "SELECT * FROM users; DROP TABLE", "████ ▓▓▓ ░░░"]


@pytest.fixture(scope="module")
def fallback_client(tmp_path_factory, serve_adapter_dir):
    """A server whose adapter has a fitted uncertainty (centroids and ramp from real embeddings)."""
    import shutil

    import torch
    from fastapi.testclient import TestClient

    from preforch.adapter import PreferenceAdapter
    from preforch.adapter.uncertainty import fit_uncertainty
    from preforch.serve.app import create_app
    from preforch.serve.config import ServeConfig
    from preforch.serve.engine import ServeEngine

    folder = tmp_path_factory.mktemp("fallback") / "adapter"
    shutil.copytree(serve_adapter_dir, folder)
    adapter = PreferenceAdapter.from_pretrained(folder)
    emb = adapter.embed(FAMILIAR * 3)  # [24, D]
    adapter.uncertainty = fit_uncertainty(adapter.mlp, adapter.config, None, emb[:16], torch.arange(16), emb[16:])
    adapter.save_pretrained(folder, overwrite=True)
    config = ServeConfig(adapter=str(folder), scorers=SCORERS, policy=None, fallback="uniform",
                         api_key_env="PREFORCH_TEST_UNSET_KEY", playground=False)
    with TestClient(create_app(ServeEngine.load(config)), base_url="http://localhost") as c:
        yield c


def test_weights_report_confidence_and_lambda_and_apply_the_fallback(fallback_client):
    body = fallback_client.post("/v1/weights", json={"prompts": FAMILIAR[:2] + ODD}).json()
    rows = body["data"]
    lam = np.array([r["lambda"] for r in rows])
    conf = np.array([r["confidence"] for r in rows])
    np.testing.assert_allclose(lam, 1 - conf, atol=1e-9)
    assert lam[:2].max() == 0 and lam[2:].min() > 0  # training prompts are familiar, odd ones fall back
    for r, share in zip(rows, lam):
        w, inferred = np.array(list(r["weights"].values())), np.array(list(r["inferred"].values()))
        np.testing.assert_allclose(w, (1 - share) * inferred + share * 0.5, atol=1e-6)  # uniform over K = 2


def test_a_request_turns_the_fallback_off_and_gets_exactly_its_blend(fallback_client):
    body = fallback_client.post("/v1/weights", json={"prompts": ODD, "preference": {
        "weights": [1, 0], "blend": 0.25, "fallback": "off"}}).json()
    for r in body["data"]:
        inferred = np.array(list(r["inferred"].values()))
        np.testing.assert_allclose(list(r["weights"].values()), 0.25 * np.array([1, 0]) + 0.75 * inferred, atol=1e-9)
        assert r["lambda"] == 0 and r["confidence"] < 1
    bad = fallback_client.post("/v1/weights", json={"prompts": ODD, "preference": {"fallback": "sometimes"}})
    assert bad.status_code == 422


def test_an_adapter_without_uncertainty_reports_none(client):
    body = client.post("/v1/weights", json={"prompts": ODD, "preference": {"fallback": "on"}}).json()
    assert all(r["confidence"] is None and r["lambda"] == 0 for r in body["data"])
    for r in body["data"]:
        assert r["weights"] == r["inferred"]


@pytest.mark.parametrize("min_score, against, reply, floored", [
    (100.0, "score", "No.", True), (-100.0, "score", "No.", False),
    # against the reply the bar is the reply's own score (min_score 100 would floor everything): 'Great!' is shorter
    # and more positive than the tiny policy's random tokens; a long angry tirade is beaten by any of them
    (100.0, "reply", "Great!", True), (100.0, "reply", "terrible awful hateful " * 60, False),
])
def test_chat_floor_serves_its_reply_and_says_so(serve_config, min_score, against, reply, floored):
    import dataclasses

    from fastapi.testclient import TestClient

    from preforch.serve.app import create_app
    from preforch.serve.engine import ServeEngine

    config = dataclasses.replace(serve_config, floor=True, floor_min_score=min_score, floor_share=0.0,
                                 floor_reply=reply, floor_against=against)
    with TestClient(create_app(ServeEngine.load(config)), base_url="http://localhost") as c:
        body = c.post("/v1/chat/completions", json={"model": "tiny", "best_of": 2, "seed": 1,
                                                    "messages": [{"role": "user", "content": "hi there"}]})
    assert body.status_code == 200, body.text
    body = body.json()
    assert body["preference"]["floored"] is floored
    assert (body["choices"][0]["message"]["content"] == reply) is floored
    if floored:
        assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["completion_tokens"] >= 1
