from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from preforch.conversation import Conversation
from preforch.errors import PreforchError
from preforch.infer.best_of_n import best_of_n, rank_candidates
from preforch.rewards.callable import CallableScorer
from preforch.rewards.normalize import Normalizer
from preforch.weighting import Weighting, choose_best

OBJECTIVES = ["harmless", "helpful", "concise"]
# Three fixed candidates with hand-set raw scores (harmless, helpful, concise).
TABLE = {"safe": [2.0, 0.0, 0.0], "useful": [0.0, 2.0, 0.0], "short": [0.0, 0.0, 2.0]}


def table_scorer() -> CallableScorer:
    return CallableScorer(lambda prompts, responses: [TABLE[r] for r in responses], OBJECTIVES, "table-v1")


def fixed_policy(prompts, n):
    return [list(TABLE)[:n] for _ in prompts]


class FakeAdapter:
    """Per-prompt weights by keyword; the identity normaliser (mean 0, std 1)."""

    def __init__(self, objectives=OBJECTIVES):
        self.objectives = list(objectives)
        self.normalizer = Normalizer(self.objectives, clip=None)
        self.normalizer.stats = {"mean": [0.0] * len(objectives), "std": [1.0] * len(objectives)}

    def predict_weights(self, prompts, batch_size=64, progress=False):
        rows = []
        for p in prompts:
            assert isinstance(p, Conversation)
            p = p.last_user
            if "hurt" in p:
                rows.append([0.8, 0.1, 0.1])
            elif "code" in p:
                rows.append([0.1, 0.8, 0.1])
            else:
                rows.append([0.1, 0.1, 0.8])
        return np.array(rows)


def test_choose_best_hand_worked():
    rewards = np.array([[0.1, 0.9, 0.3], [2.0, -1.0, 2.0], [-3.0, -2.0, -2.5], [5.0, 5.0, 5.0]])
    # argmax; on ties the first index wins (row 2: 0 over 2; row 4: 0).
    assert choose_best(rewards).tolist() == [1, 0, 1, 0]
    with pytest.raises(PreforchError, match="prompt 0, candidate 1"):
        choose_best(np.array([[0.0, np.nan]]))


def test_rank_candidates_hand_worked():
    raw = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])  # [N=2, G=2, K=2]
    weights = np.array([[0.7, 0.3], [0.2, 0.8]])  # [N, K]
    normed, rewards, best = rank_candidates(raw, weights, normalizer=None)
    np.testing.assert_allclose(rewards, [[0.7, 0.3], [0.2, 0.8]])
    assert best.tolist() == [0, 1]
    norm = Normalizer(["a", "b"], clip=None)
    norm.stats = {"mean": [1.0, 0.0], "std": [2.0, 0.5]}
    normed, rewards, _ = rank_candidates(raw, weights, norm)
    # s~ = (s − mean)/std: candidate 0 → (0, 0), candidate 1 → (−0.5, 2); R = w·s~.
    np.testing.assert_allclose(normed[0], [[0.0, 0.0], [-0.5, 2.0]])
    np.testing.assert_allclose(rewards, [[0.0, -0.35 + 0.6], [0.0, -0.1 + 1.6]])


def test_per_prompt_weights_change_the_winner():
    prompts = ["how do I hurt someone", "fix my code please", "say hi"]
    result = best_of_n(prompts, fixed_policy, table_scorer(), 3, adapter=FakeAdapter(), return_candidates=True)
    assert result.responses == ["safe", "useful", "short"]
    assert result.best_index.tolist() == [0, 1, 2]
    assert result.weight_source == "adapter" and result.normalizer_source == "adapter"
    np.testing.assert_allclose(result.rewards[0], [1.6, 0.2, 0.2])
    assert result.raw_scores.shape == (3, 3, 3) and result.candidates[1] == list(TABLE)
    rec = result.to_records()[1]
    assert rec["response"] == "useful" and rec["weights"]["helpful"] == pytest.approx(0.8)
    assert [c["response"] for c in rec["candidates"]] == list(TABLE)
    assert rec["candidates"][1]["scores"] == {"harmless": 0.0, "helpful": 2.0, "concise": 0.0}


def test_fixed_and_blended_weights():
    prompts = ["how do I hurt someone", "say hi"]
    fixed = best_of_n(prompts, fixed_policy, table_scorer(), 3, weighting=Weighting("fixed", [0.0, 1.0, 0.0]))
    assert fixed.responses == ["useful", "useful"] and fixed.weight_source == "user"
    assert fixed.normalizer_source == "candidates" and fixed.candidates is None
    # λ = 0.5: prompt 1 weights 0.5·(0,1,0) + 0.5·(0.8,0.1,0.1) = (0.4, 0.55, 0.05) → "useful".
    blended = best_of_n(prompts, fixed_policy, table_scorer(), 3, adapter=FakeAdapter(),
                        weighting=Weighting("blend", [0, 1, 0], 0.5))
    np.testing.assert_allclose(blended.weights[0], [0.4, 0.55, 0.05])
    assert blended.responses == ["useful", "useful"]
    # λ = 0.2 leaves the adapter in charge of prompt 1: (0.64, 0.28, 0.08) → "safe".
    blended = best_of_n(prompts, fixed_policy, table_scorer(), 3, adapter=FakeAdapter(),
                        weighting=Weighting("blend", {"helpful": 1}, 0.2))
    assert blended.responses[0] == "safe" and blended.weight_source == "blend(0.2)"


def test_bad_input():
    with pytest.raises(PreforchError, match="N >= 2"):
        best_of_n(["hi"], fixed_policy, table_scorer(), 1, adapter=FakeAdapter())
    with pytest.raises(PreforchError) as err:
        best_of_n(["hi"], fixed_policy, table_scorer(), 2, adapter=FakeAdapter(["harmless", "humor"]))
    assert "['harmless', 'humor']" in str(err.value) and "['harmless', 'helpful', 'concise']" in str(err.value)
    with pytest.raises(PreforchError, match="3 weights"):
        best_of_n(["hi"], fixed_policy, table_scorer(), 2, weighting=Weighting("fixed", [0.5, 0.5]))
    with pytest.raises(PreforchError, match="needs weights: give an adapter"):
        best_of_n(["hi"], fixed_policy, table_scorer(), 2, weighting=Weighting("blend", [1, 1, 1]))
    with pytest.raises(PreforchError, match="expected 3 each"):
        best_of_n(["hi"], lambda p, n: [["a", "b"]], table_scorer(), 3, weighting=Weighting("fixed", [1, 1, 1]))


def length_scorer() -> CallableScorer:
    def fn(prompts, responses):
        return [[len(r), -len(r)] for r in responses]

    return CallableScorer(fn, ["long", "short"], "length-v1")


def test_best_of_n_with_a_tiny_model(tiny_policy):
    from preforch.models.generation import GenerationConfig

    policy = tiny_policy
    config = GenerationConfig(max_new_tokens=6, seed=3)
    prompts = ["one prompt", "another prompt"]
    result = best_of_n(prompts, policy, length_scorer(), 4, weighting=Weighting("fixed", [1.0, 0.0]),
                       generation=config, return_candidates=True)
    assert [len(c) for c in result.candidates] == [4, 4]
    for i in range(2):
        lengths = [len(c) for c in result.candidates[i]]
        assert len(result.responses[i]) == max(lengths)
        assert result.best_index[i] == lengths.index(max(lengths))
    again = best_of_n(prompts, policy, length_scorer(), 4, weighting=Weighting("fixed", [0.0, 1.0]),
                      generation=config)
    assert [len(r) for r in again.responses] == [min(len(c) for c in row) for row in result.candidates]


def words_and_vowels() -> CallableScorer:
    """The objectives of the shared ``tiny_adapter_dir`` fixture: words in the reply, share of vowels."""

    def fn(prompts, responses):
        out = []
        for r in responses:
            letters = [c for c in r.lower() if c.isalpha()]
            out.append([len(r.split()), sum(c in "aeiou" for c in letters) / max(1, len(letters))])
        return out

    return CallableScorer(fn, ["length", "vowels"], "tests.best_of_n.words_vowels:v1")


def test_best_of_n_with_a_trained_adapter(tiny_policy, tiny_adapter_dir):
    from preforch.adapter import PreferenceAdapter
    from preforch.models.generation import GenerationConfig

    adapter = PreferenceAdapter.from_pretrained(tiny_adapter_dir)
    prompts = ["how do I sort a list in python", "tell me a funny joke about cats"]
    result = best_of_n(prompts, tiny_policy, words_and_vowels(), 3, adapter=adapter,
                       generation=GenerationConfig(max_new_tokens=8, seed=1), return_candidates=True)
    expected_w = adapter.predict_weights(prompts)  # [N, K]
    np.testing.assert_allclose(result.weights, expected_w)
    normed = adapter.normalizer.transform(result.raw_scores.reshape(-1, 2)).reshape(2, 3, 2)  # [N, G, K]
    rewards = (normed * expected_w[:, None, :]).sum(-1)  # [N, G]
    np.testing.assert_allclose(result.rewards, rewards, rtol=1e-6)
    assert result.best_index.tolist() == rewards.argmax(1).tolist()
    assert result.responses == [result.candidates[i][j] for i, j in enumerate(rewards.argmax(1))]


def _run_cli(argv):
    from preforch.cli.main import main

    return main(argv)


def test_generate_help(capsys):
    with pytest.raises(SystemExit) as exc:
        _run_cli(["generate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--best-of" in out and "--prompts-file" in out and "--all-candidates" in out


TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny" / "generate.yaml"


def test_generate_cli_plain(tiny_policy_dir, tmp_path, capsys):
    out = tmp_path / "plain.jsonl"
    rc = _run_cli(["generate", "--policy", str(tiny_policy_dir), "--prompts", "hello there", "a, b and c",
                   "--num-return-sequences", "2", "--max-new-tokens", "4", "--progress", "false",
                   "--output", str(out)])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [[{"role": "user", "content": "hello there"}],
                                           [{"role": "user", "content": "a, b and c"}]]
    assert [len(r["responses"]) for r in rows] == [2, 2]
    assert _run_cli(["generate", "--policy", str(tiny_policy_dir), "--prompts", "x", "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_generate_cli_best_of_fixed_weights(tiny_policy_dir, tmp_path, prompts_file):
    out = tmp_path / "best.jsonl"
    rc = _run_cli(["generate", "--config", str(TINY_CONFIG), "--policy", str(tiny_policy_dir),
                   "--prompts-file", str(prompts_file), "--limit", "4", "--user-weights", "1,0", "--all-candidates",
                   "--output", str(out), "--candidates-output", "null"])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4  # the config's two inline prompts, then two from the file (limit 4)
    for row in rows:
        assert set(row["weights"]) == {"concise", "positive"} and row["weights"]["concise"] == 1.0
        assert len(row["candidates"]) == 3
        rewards = [c["reward"] for c in row["candidates"]]
        assert row["best_index"] == rewards.index(max(rewards))
        assert row["response"] == row["candidates"][row["best_index"]]["response"]
        # weights (1, 0): the chosen reply is one of the most concise (fewest words).
        concise = [c["scores"]["concise"] for c in row["candidates"]]
        assert row["scores"]["concise"] == max(concise)


def test_generate_cli_bad_input(tiny_policy_dir, tiny_adapter_dir, capsys):
    base = ["generate", "--config", str(TINY_CONFIG), "--policy", str(tiny_policy_dir)]
    assert _run_cli([*base, "--best-of", "1"]) == 2
    assert "N >= 2" in capsys.readouterr().err
    assert _run_cli([*base, "--user-weights", "null", "--adapter", str(tiny_adapter_dir)]) == 2
    err = capsys.readouterr().err
    assert "['length', 'vowels']" in err and "['concise', 'positive']" in err
    assert _run_cli([*base, "--user-weights", "1,2,3"]) == 2
    assert "2 weights" in capsys.readouterr().err


@pytest.mark.parametrize("package", ["preforch.align", "preforch.infer"])
def test_package_import_stays_light(package):
    code = f"import sys, {package}; print(any(m in sys.modules for m in ('torch', 'trl', 'peft')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
