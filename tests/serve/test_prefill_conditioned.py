"""Prefill reuse for causal_lm adapters (server and best-of-N) and reward-conditioned generation (server
strategy and `preforch generate --strategy conditioned`), with objectives matched to the tags by name."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_models import SCORERS, make_adapter

from preforch.conversation import as_conversation
from preforch.errors import PreforchError

SINGLE = [{"role": "user", "content": "how do I sort a list in python"}]
MULTI = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "hello"}, {"role": "user", "content": "tell me a joke about cats"}]
#: The tags list the objectives in the other order than the adapter (concise, positive).
CONDITIONING = {"format_version": 1, "objectives": ["positive", "concise"], "decimals": 1, "mapping": "ric",
                "low": [-1.0, -2.0], "high": [1.0, 2.0]}


@pytest.fixture(scope="module")
def causal_engines(tmp_path_factory, serve_policy_dir, serve_config):
    """Engines whose adapter reads the served policy's last-prompt-token state, per prompt view."""
    from preforch.serve.engine import ServeEngine

    out = {}
    for view in ("context", "last_user"):
        folder = make_adapter(tmp_path_factory.mktemp(f"causal_{view}") / "adapter", serve_policy_dir, dim=16,
                              encoder="causal_lm", prompt_view=view)
        out[view] = ServeEngine.load(dataclasses.replace(serve_config, adapter=str(folder)))
    yield out
    for engine in out.values():
        engine.close()


def client_of(engine) -> TestClient:
    from preforch.serve.app import create_app

    return TestClient(create_app(engine, api_key=""), base_url="http://localhost")


def ask(client, messages, **fields) -> dict:
    body = {"model": "m", "messages": messages, "max_tokens": 3, "seed": 1, "strategy": "sample", **fields}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def own_pass(engine, messages) -> list[float]:
    row = engine.adapter.predict_weights([as_conversation(messages)])[0]
    return [float(v) for v in row]


@pytest.mark.parametrize("view, messages, source", [
    ("context", SINGLE, "prefill"), ("context", MULTI, "prefill"),
    ("last_user", SINGLE, "prefill"),  # one user turn: the view keeps all of it
    ("last_user", MULTI, "encoder"),  # the view drops earlier turns the prefill has seen: own pass
])
@pytest.mark.parametrize("strategy", ["sample", "best_of_n"])
def test_prefill_state_gives_the_adapters_own_weights(causal_engines, view, messages, source, strategy):
    engine = causal_engines[view]
    assert engine.prefill_layer == -1
    with client_of(engine) as client:
        extra = {"strategy": strategy, "best_of": 2} if strategy == "best_of_n" else {}
        info = ask(client, messages, **extra)["preference"]
    assert info["inferred_from"] == source
    got = [info["inferred"][k] for k in engine.objectives]
    assert got == pytest.approx(own_pass(engine, messages), abs=1e-5)
    assert abs(got[0] - 0.5) > 1e-3  # a real prediction, not a uniform placeholder


def test_streamed_sampling_reuses_the_prefill_too(causal_engines):
    engine = causal_engines["context"]
    body = {"model": "m", "messages": MULTI, "max_tokens": 3, "strategy": "sample", "stream": True}
    with client_of(engine) as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    info = json.loads(events[-2])["preference"]
    assert info["inferred_from"] == "prefill"
    assert [info["inferred"][k] for k in engine.objectives] == pytest.approx(own_pass(engine, MULTI), abs=1e-5)


def test_prompts_over_a_token_limit_take_the_encoder_pass(causal_engines):
    from preforch.serve.engine import ServeEngine

    base = causal_engines["context"]
    short = ServeEngine(dataclasses.replace(base.config, max_prompt_tokens=4), base.adapter, base.scorer,
                        base.policy, base.policy_name)
    with client_of(short) as client:
        info = ask(client, MULTI)["preference"]
    short.close()
    assert info["inferred_from"] == "encoder"


def test_no_reuse_for_a_sentence_encoder_adapter(engine):
    assert engine.prefill_layer is None


def test_best_of_n_job_reads_weights_from_the_prefill(serve_policy_dir, causal_engines):
    from preforch.adapter import PreferenceAdapter
    from preforch.infer.best_of_n import best_of_n
    from preforch.models.generation import GenerationConfig, load_policy
    from preforch.rewards.multi import MultiScorer
    from preforch.rewards.registry import build_scorers

    adapter = PreferenceAdapter.from_pretrained(causal_engines["context"].config.adapter)
    prompts = [as_conversation(SINGLE), as_conversation(MULTI)]
    expected = causal_engines["context"].adapter.predict_weights(prompts)
    result = best_of_n(prompts, load_policy(str(serve_policy_dir)), MultiScorer(build_scorers(SCORERS)), 2,
                       adapter=adapter, generation=GenerationConfig(max_new_tokens=3, seed=0))
    np.testing.assert_allclose(result.weights, expected, atol=1e-5)
    assert adapter._encoder is None  # the adapter never ran (or even loaded) its own encoder


# ---- conditioned generation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conditioned_dir(tmp_path_factory, serve_policy_dir):
    folder = tmp_path_factory.mktemp("conditioned") / "final"
    shutil.copytree(serve_policy_dir, folder)
    (folder / "conditioning.json").write_text(json.dumps(CONDITIONING))
    return folder


@pytest.fixture(scope="module")
def conditioned_engine(conditioned_dir, serve_config):
    from preforch.serve.engine import ServeEngine

    engine = ServeEngine.load(dataclasses.replace(serve_config, policy=str(conditioned_dir)))
    yield engine
    engine.close()


def test_conditioned_strategy_tags_each_objective_by_name(conditioned_engine):
    with client_of(conditioned_engine) as client:
        assert "conditioned" in client.get("/health").json()["strategies"]
        plain = ask(client, SINGLE)
        tagged = ask(client, SINGLE, strategy="conditioned", preference={"weights": {"concise": 1}})
    info = tagged["preference"]
    assert info["strategy"] == "conditioned" and info["best_of"] == 1
    # all weight on concise: the top of concise's range, the bottom of positive's (a positional mapping
    # would have asked for positive 1.0 and concise -2.0)
    assert info["targets"] == {"positive": -1.0, "concise": 2.0}
    assert tagged["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]  # the tags reached the policy


def test_conditioned_strategy_streams(conditioned_engine):
    body = {"model": "m", "messages": SINGLE, "max_tokens": 3, "strategy": "conditioned", "stream": True}
    with client_of(conditioned_engine) as client, client.stream("POST", "/v1/chat/completions",
                                                                 json=body) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    info = json.loads(events[-2])["preference"]
    assert info["strategy"] == "conditioned" and set(info["targets"]) == {"positive", "concise"}


def test_conditioning_with_other_objectives_is_refused(conditioned_dir, serve_config, tmp_path):
    from preforch.serve.engine import ServeEngine

    folder = tmp_path / "other"
    shutil.copytree(conditioned_dir, folder)
    (folder / "conditioning.json").write_text(json.dumps({**CONDITIONING, "objectives": ["funny", "concise"]}))
    with pytest.raises(PreforchError, match="same names"):
        ServeEngine.load(dataclasses.replace(serve_config, policy=str(folder)))


def test_generate_cli_conditioned(conditioned_dir, serve_adapter_dir, tmp_path, engine):
    from preforch.cli.main import main

    out = tmp_path / "out.jsonl"
    code = main(["generate", "--strategy", "conditioned", "--policy", str(conditioned_dir), "--adapter",
                 str(serve_adapter_dir), "--prompts", "tell me a joke about cats", "--max-new-tokens", "3",
                 "--output", str(out), "--progress", "false"])
    assert code == 0
    record = json.loads(out.read_text())
    assert set(record["targets"]) == {"positive", "concise"} and len(record["responses"]) == 1
    w = engine.adapter.predict_weights(["tell me a joke about cats"])[0]  # adapter order: concise, positive
    assert record["weights"] == pytest.approx({"concise": w[0], "positive": w[1]}, abs=1e-6)

    fixed = tmp_path / "fixed.jsonl"
    assert main(["generate", "--strategy", "conditioned", "--policy", str(conditioned_dir), "--user-weights",
                 "{concise: 1}", "--prompts", "hi", "--max-new-tokens", "2", "--output", str(fixed),
                 "--progress", "false"]) == 0
    assert json.loads(fixed.read_text())["targets"] == {"positive": -1.0, "concise": 2.0}


@pytest.mark.parametrize("flags, word", [
    (["--strategy", "conditioned", "--best-of", "2"], "best_of applies"),
    (["--strategy", "best_of_n"], "needs --best-of"),
    (["--strategy", "conditioned", "--all-candidates"], "all_candidates"),
    (["--floor", "true"], "floor applies to strategy best_of_n"),
    (["--best-of", "2", "--user-weights", "1", "--floor-against", "sometimes"], "floor_against"),
])
def test_generate_cli_strategy_refusals(flags, word, capsys):
    from preforch.cli.main import main

    assert main(["generate", "--prompts", "hi", *flags]) == 2
    assert word in capsys.readouterr().err


def test_generate_cli_floor_against_the_reply(serve_policy_dir, tmp_path):
    """`preforch generate --floor true --floor-against reply`: the tiny policy's random tokens are neither as short
    nor as positive as 'Great!', so every prompt gets the floor's reply and its record says so."""
    from preforch.cli.main import main
    from serve_models import SCORERS

    out, config = tmp_path / "floor.jsonl", tmp_path / "floor.yaml"
    config.write_text(json.dumps({"scorers": SCORERS}))  # JSON is YAML
    code = main(["generate", "--config", str(config), "--policy", str(serve_policy_dir), "--best-of", "2",
                 "--user-weights", "0.5,0.5", "--prompts", "hi there", "tell me more", "--max-new-tokens", "4",
                 "--floor", "true", "--floor-share", "0", "--floor-against", "reply", "--floor-reply", "Great!",
                 "--output", str(out), "--progress", "false"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["floored"] for r in records] == [True, True] and all(r["response"] == "Great!" for r in records)
