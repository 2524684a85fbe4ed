"""The evaluate commands end to end with a tiny adapter: report files, plots, bad input, --help."""

import json

import numpy as np
import pytest

from preforch.cli.main import main
from preforch.data.load import rows_from_preference_data, write_table
from preforch.data.split import prompt_fingerprint, split_by_prompt
from preforch.recipes.adapter_train import TrainAdapterJob, run_train_job
from preforch.types import PreferenceData

OBJECTIVES = ["helpful", "harmless", "humor"]
WORDS = {0: ["python code", "sql query", "unit test"], 1: ["steal a car", "make poison", "hack a phone"],
         2: ["funny joke", "cat pun", "silly rhyme"]}
KINDS = ["coding", "redteam", "jokes"]


def make_data(n: int, seed: int = 0) -> PreferenceData:
    """Kind c's preferred response scores high on objective c; the rejected one is lower there and higher on the
    other objectives, so no single fixed weighting ranks every kind's pairs right."""
    rng = np.random.default_rng(seed)
    prompts, kinds, sc = [], [], []
    for i in range(n):
        c = i % 3
        prompts.append(f"please {rng.choice(WORDS[c])} {rng.choice(WORDS[c])} #{i}")
        kinds.append(KINDS[c])
        s = rng.normal(0, 0.5, 3)
        s[c] += 2.0
        sc.append(s)
    sc = np.array(sc)
    own = np.eye(3)[[i % 3 for i in range(n)]]  # [N, 3]
    sr = sc - 2.5 * own + 1.5 * (1 - own) + rng.normal(0, 0.3, (n, 3))
    return PreferenceData(prompts=prompts, chosen=["ok"] * n, rejected=["no"] * n, objectives=OBJECTIVES,
                          scores_chosen=sc, scores_rejected=sr, kinds=kinds, source="test data")


@pytest.fixture(scope="module")
def setup(tiny_encoder_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = make_data(300)
    job = TrainAdapterJob(encoder_path=str(tiny_encoder_dir), hidden=16, epochs=40, patience=10, lr=3e-3,
                          dropout=0.0, cache_embeddings=False, val_fraction=0.2, test_fraction=0.25,
                          output=str(root / "adapter"), plot=False, progress=False)
    run_train_job(job, data)
    write_table(rows_from_preference_data(data), root / "data.jsonl")
    # Best-of-3 candidates for 30 prompts: each candidate strong on one objective.
    rng = np.random.default_rng(1)
    rows = []
    for i in range(30):
        c = i % 3
        prompt = f"please {WORDS[c][0]} {WORDS[c][1]} #{1000 + i}"
        for g in range(3):
            s = rng.normal(0, 0.3, 3)
            s[g] += 1.5
            rows.append({"prompt": prompt, "response": f"r{g}", "kind": KINDS[c],
                         **{f"score.{o}": float(s[k]) for k, o in enumerate(OBJECTIVES)}})
    write_table(rows, root / "candidates.jsonl")
    return root


def _png_ok(path):
    from PIL import Image

    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100


def test_help(capsys):
    for sub in ("adapter", "responses"):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", sub, "--help"])
        assert exit_info.value.code == 0
        assert "--config" in capsys.readouterr().out


def test_evaluate_adapter_cli(setup, capsys):
    out = setup / "report_adapter"
    rc = main(["evaluate", "adapter", "--adapter", str(setup / "adapter"), "--data", str(setup / "data.jsonl"),
               "--resolution", "4", "--reward-model-prompts", "[]", "--bootstrap", "300", "--output-dir", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    result = report["result"]
    # the test rows are exactly the adapter's recorded test split, none of them trained or early-stopped on
    data = make_data(300)
    split = split_by_prompt(data.prompts, 0.2, 0.25, 0)
    recorded = json.loads((setup / "adapter" / "split.json").read_text())["fingerprints"]
    assert result["n_test"] == len(split.test) and result["n_select"] == len(split.train) + len(split.val)
    assert {prompt_fingerprint(data.prompts[i]) for i in split.test} == set(recorded["test"])
    assert not set(recorded["test"]) & (set(recorded["train"]) | set(recorded["val"]))
    assert result["protocol"]["excluded"]["test_rows_the_adapter_trained_or_validated_on"] == 0
    assert result["n_lattice"] == 15
    pooled = result["pairwise"]["all"]
    assert pooled["n_pairs"] == len(split.test) and set(result["pairwise"]) == {"all", *KINDS}
    # each kind's preferred reply stands out on its own objective: prompt-aware weights must beat any single
    # fixed vector on the pooled test pairs, with an interval that excludes 0
    gap = pooled["adapter_minus_best_fixed"]
    assert gap["mean"] > 0.1 and gap["lo"] > 0 and gap["p_value"] < 0.05, gap
    assert pooled["adapter"]["lo"] <= pooled["adapter"]["mean"] <= pooled["adapter"]["hi"]
    md = (out / "report.md").read_text()
    assert "| group | pairs (prompts) | adapter | uniform | best fixed |" in md and "| redteam |" in md
    assert "oracle fixed (optimistic)" in md
    for name in ("weights_by_kind.png", "reliability.png"):
        _png_ok(out / name)
    # An existing folder is refused without --overwrite, on one line.
    rc = main(["evaluate", "adapter", "--adapter", str(setup / "adapter"), "--data", str(setup / "data.jsonl"),
               "--output-dir", str(out)])
    assert rc == 2 and "exists" in capsys.readouterr().err


def test_evaluate_adapter_excludes_rows_the_models_saw(setup, tmp_path):
    data = make_data(300)
    split = split_by_prompt(data.prompts, 0.2, 0.25, 0)
    # test_data = every row: the rows the adapter trained or early-stopped on must be dropped, loudly
    heads = tmp_path / "heads"
    heads.mkdir()
    some_test = sorted({prompt_fingerprint(data.prompts[i]) for i in split.test})[:7]
    (heads / "training_prompts.json").write_text(json.dumps({"fingerprints": some_test}))
    out = tmp_path / "report"
    rc = main(["evaluate", "adapter", "--adapter", str(setup / "adapter"), "--data", str(setup / "data.jsonl"),
               "--test-data", str(setup / "data.jsonl"), "--reward-model-prompts", f"[{heads}]", "--bootstrap", "50",
               "--plots", "false", "--output-dir", str(out)])
    assert rc == 0
    result = json.loads((out / "report.json").read_text())["result"]
    excluded = result["protocol"]["excluded"]
    assert excluded["test_rows_the_adapter_trained_or_validated_on"] == len(split.train) + len(split.val)
    assert excluded["test_rows_a_reward_model_trained_on"] == 7
    assert result["n_test"] == len(split.test) - 7
    # selection rows never share a prompt with a test row
    assert excluded["selection_rows_sharing_a_test_prompt"] == len(split.test) - 7
    assert "Excluded so that no number comes from a fitted or selected row" in (out / "report.md").read_text()


def test_evaluate_responses_best_of_n(setup):
    out = setup / "report_bon"
    rc = main(["evaluate", "responses", "--responses", str(setup / "candidates.jsonl"), "--adapter",
               str(setup / "adapter"), "--resolution", "5", "--output-dir", str(out)])
    assert rc == 0
    result = json.loads((out / "report.json").read_text())["result"]
    assert result["mode"] == "best_of_n" and result["n_candidates"] == 3 and result["n_prompts"] == 30
    pooled = result["groups"]["all"]
    assert len(pooled["fixed_points"]) == 21 and any(pooled["front"])
    assert np.all(np.asarray(pooled["fixed_points"]) >= np.asarray(pooled["reference_point"]))
    assert pooled["hv_with_aware"] >= pooled["hv_fixed"] > 0
    # the prompt-aware point is the mean normalised score of the candidates the adapter's own weights pick
    from preforch.adapter import PreferenceAdapter
    from preforch.data.load import read_table
    from preforch.evaluate.metrics import select_best

    adapter = PreferenceAdapter.from_pretrained(setup / "adapter")
    rows = read_table(setup / "candidates.jsonl")
    prompts = [r["prompt"] for r in rows[::3]]
    raw = np.array([[r[f"score.{o}"] for o in OBJECTIVES] for r in rows]).reshape(30, 3, 3)  # [N, G, K]
    s = adapter.normalizer.transform(raw.reshape(-1, 3)).reshape(30, 3, 3)
    picks = select_best(s, adapter.predict_weights(prompts))  # [N]
    np.testing.assert_allclose(pooled["aware_point"], s[np.arange(30), picks].mean(0), atol=1e-9)
    # and the adapter weighs kind c's prompts towards candidate c, the one strong on objective c
    assert (picks == np.arange(30) % 3).mean() >= 0.8
    md = (out / "report.md").read_text()
    assert "| group | prompts | prompt-aware point | location |" in md and "**prompt-aware**" in md
    for name in ("front_all.png", "front_coding.png", "weights_by_kind.png"):
        _png_ok(out / name)


def test_evaluate_responses_policies_and_weights_file(tmp_path):
    rows, weights = [], []
    for i in range(6):
        p = f"prompt {i}"
        weights.append({"prompt": p, "weight.a": 0.9 if i % 2 else 0.1, "weight.b": 0.1 if i % 2 else 0.9})
        for name, s in (("fixed_a", (1.0, 0.0)), ("fixed_b", (0.0, 1.0)), ("pro", (0.8, 0.8))):
            rows.append({"prompt": p, "response": "r", "policy": name, "score.a": s[0], "score.b": s[1]})
    write_table(rows, tmp_path / "policies.jsonl")
    write_table(weights, tmp_path / "weights.jsonl")
    out = tmp_path / "report"
    rc = main(["evaluate", "responses", "--responses", str(tmp_path / "policies.jsonl"), "--weights-file",
               str(tmp_path / "weights.jsonl"), "--aware-policy", "pro", "--output-dir", str(out)])
    assert rc == 0
    g = json.loads((out / "report.json").read_text())["result"]["groups"]["all"]
    assert g["fixed_labels"] == ["fixed_a", "fixed_b"] and g["location"] == "on_front"
    # Normalised on the responses themselves (z-scores): pro sits between the two corners, undominated.
    _png_ok(out / "front_all.png")


def test_responses_bad_input(setup, tmp_path, capsys):
    # K mismatch: two objectives against a three-objective adapter.
    write_table([{"prompt": "p", "response": "r", "score.helpful": 1.0, "score.harmless": 0.0}],
                tmp_path / "k2.jsonl")
    rc = main(["evaluate", "responses", "--responses", str(tmp_path / "k2.jsonl"), "--adapter", str(setup / "adapter"),
               "--output-dir", str(tmp_path / "o1")])
    assert rc == 2 and "objectives" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists()
    # Weights file whose prompts do not match the responses'.
    write_table([{"prompt": "other", "weight.helpful": 0.5, "weight.harmless": 0.5}], tmp_path / "w.jsonl")
    write_table([{"prompt": "p", "response": "r", "score.helpful": 1.0, "score.harmless": 0.0},
                 {"prompt": "p", "response": "s", "score.helpful": 0.0, "score.harmless": 1.0}], tmp_path / "r.jsonl")
    rc = main(["evaluate", "responses", "--responses", str(tmp_path / "r.jsonl"), "--weights-file",
               str(tmp_path / "w.jsonl"), "--output-dir", str(tmp_path / "o2")])
    assert rc == 2 and "no weights for prompt 'p'" in capsys.readouterr().err
    # A reference point that does not bound the data.
    rc = main(["evaluate", "responses", "--responses", str(setup / "candidates.jsonl"), "--reference-point",
               "5,5,5", "--plots", "false", "--output-dir", str(tmp_path / "o3")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not bound the data" in err and "nothing is clipped" in err
    # Unequal candidate counts.
    write_table([{"prompt": "p", "response": "r", "score.a": 1.0, "score.b": 0.0},
                 {"prompt": "p", "response": "s", "score.a": 0.0, "score.b": 1.0},
                 {"prompt": "q", "response": "t", "score.a": 0.0, "score.b": 1.0}], tmp_path / "uneven.jsonl")
    rc = main(["evaluate", "responses", "--responses", str(tmp_path / "uneven.jsonl"), "--output-dir",
               str(tmp_path / "o4")])
    assert rc == 2 and "same number of candidates" in capsys.readouterr().err
