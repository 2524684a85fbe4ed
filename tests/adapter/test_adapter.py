"""The adapter end to end on a tiny random encoder: learning, save/load, bad input, CLI."""

import json

import numpy as np
import pytest
import torch

from preforch.adapter import AdapterConfig, PreferenceAdapter, train_adapter
from preforch.cli.main import main
from preforch.data.load import rows_from_preference_data, write_table
from preforch.errors import PreforchError
from preforch.recipes.adapter_train import TrainAdapterJob, run_train_job
from preforch.types import PreferenceData

OBJECTIVES = ["helpful", "harmless", "humor"]
TOPICS = {
    0: ["python function", "sort a list", "compile error", "sql query", "regex pattern", "unit test"],
    1: ["hurt someone", "steal a car", "make poison", "break into a house", "hack my neighbour", "buy a gun"],
    2: ["funny joke", "pun about cats", "silly limerick", "knock knock joke", "comic story", "prank idea"],
}
TEMPLATES = ["how do I {t} and {u}?", "tell me about {t}, {u} please", "help with {t} or {u} {n}", "{t} {u} now"]


def synthetic(n: int, seed: int = 0) -> PreferenceData:
    """Prompts of three kinds; the preferred response of kind c scores high on objective c."""
    rng = np.random.default_rng(seed)
    prompts, kinds, scores = [], [], []
    for i in range(n):
        kind = i % 3
        t, u = rng.choice(TOPICS[kind], size=2, replace=False)
        prompts.append(TEMPLATES[rng.integers(len(TEMPLATES))].format(t=t, u=u, n=rng.integers(1000)))
        s = rng.normal(0.0, 0.5, size=3)
        s[kind] += 2.0
        kinds.append(OBJECTIVES[kind])
        scores.append(s)
    rejected = np.array(scores) - np.eye(3)[[i % 3 for i in range(n)]] * 2.5
    return PreferenceData(prompts=prompts, chosen=["ok"] * n, rejected=["no"] * n, objectives=OBJECTIVES,
                          scores_chosen=np.array(scores), scores_rejected=rejected, kinds=kinds, source="synthetic")


def config(encoder_dir, **kw) -> AdapterConfig:
    base = dict(encoder_path=str(encoder_dir), hidden=32, epochs=60, patience=10, lr=3e-3, dropout=0.0,
                cache_embeddings=False, embed_batch_size=128)
    base.update(kw)
    return AdapterConfig(**base)


@pytest.fixture(scope="module")
def trained(tiny_encoder_dir):
    return train_adapter(config(tiny_encoder_dir), synthetic(600), progress=False)


def test_recovers_known_weights_on_held_out_prompts(trained):
    report = trained.report
    assert report.n_val > 50
    assert report.top1 >= 0.95, report
    for kind in OBJECTIVES:  # each kind's own objective dominates its mean weight
        weights = report.per_kind[kind]
        assert max(weights, key=weights.get) == kind


@pytest.mark.parametrize("loss", ["reverse_kl", "pairwise", "mix"])
def test_other_losses_learn(tiny_encoder_dir, loss):
    result = train_adapter(config(tiny_encoder_dir, loss=loss, epochs=30), synthetic(300), progress=False)
    assert result.report.top1 >= 0.9, (loss, result.report.top1)


@pytest.mark.parametrize("loss", ["pairwise", "forward_kl"])
def test_the_report_leads_with_what_the_loss_fits(tiny_encoder_dir, loss):
    from preforch.adapter.train import format_report
    from preforch.evaluate.metrics import pair_outcomes

    data = synthetic(150)
    result = train_adapter(config(tiny_encoder_dir, loss=loss, epochs=5), data, progress=False)
    report, va = result.report, result.split.val
    norm = result.adapter.normalizer
    weights = result.adapter.predict_from_embeddings(result.val_embeddings).numpy()  # [V, K]
    expected = pair_outcomes(weights, norm.transform(data.scores_chosen[va]), norm.transform(data.scores_rejected[va]))
    assert report.loss == loss and report.pairwise_accuracy == pytest.approx(expected.mean(), abs=1e-6)
    second = format_report(report).splitlines()[1]  # the line after the sizes
    if loss == "pairwise":
        assert second.startswith(f"validation pairwise accuracy {expected.mean():.3f}")
    else:
        assert second.startswith("validation KL(w*||w)")


def test_split_is_by_prompt(tiny_encoder_dir):
    data = synthetic(90)
    data = data.subset(list(range(90)) + list(range(90)))  # every prompt twice
    result = train_adapter(config(tiny_encoder_dir, epochs=2), data, progress=False)
    train_prompts = {data.prompts[i] for i in result.train_index}
    assert not train_prompts & {data.prompts[i] for i in result.val_index}


def test_training_is_reproducible(tiny_encoder_dir):
    a = train_adapter(config(tiny_encoder_dir, epochs=5), synthetic(120), progress=False)
    b = train_adapter(config(tiny_encoder_dir, epochs=5), synthetic(120), progress=False)
    for (name, x), (_, y) in zip(a.adapter.mlp.state_dict().items(), b.adapter.mlp.state_dict().items()):
        assert torch.equal(x, y), name


def test_save_load_round_trip_is_exact(trained, tmp_path, tiny_encoder_dir):
    adapter = trained.adapter
    adapter.save_pretrained(tmp_path / "a")
    config_json = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config_json["format_version"] == 2 and "torch" in config_json["versions"]
    assert list(config_json) == sorted(config_json)
    back = PreferenceAdapter.from_pretrained(tmp_path / "a")
    for (name, x), (name2, y) in zip(adapter.mlp.state_dict().items(), back.mlp.state_dict().items()):
        assert name == name2 and torch.equal(x, y)
    assert back.normalizer.to_dict() == adapter.normalizer.to_dict()
    prompts = ["how do I sort a list?", "tell me a funny joke", "how can I steal a car"]
    assert np.array_equal(back.predict_weights(prompts), adapter.predict_weights(prompts))
    w = back.predict_weights(prompts)
    assert w.shape == (3, 3) and np.allclose(w.sum(1), 1.0)


def test_refuses_existing_output_and_leaves_no_partial_folder(trained, tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(PreforchError, match="exists"):
        trained.adapter.save_pretrained(tmp_path / "a")
    trained.adapter.save_pretrained(tmp_path / "a", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_bad_artifacts(trained, tmp_path):
    folder = trained.adapter.save_pretrained(tmp_path / "a")
    weights = folder / "model.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(PreforchError, match="model.safetensors: cannot read"):
        PreferenceAdapter.from_pretrained(folder)
    weights.unlink()
    with pytest.raises(PreforchError, match="model.safetensors: missing"):
        PreferenceAdapter.from_pretrained(folder)
    weights.write_bytes(blob)
    meta = json.loads((folder / "config.json").read_text())
    meta["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(PreforchError, match="unknown format_version 99"):
        PreferenceAdapter.from_pretrained(folder)


def test_bad_training_data(tiny_encoder_dir):
    data = synthetic(30)
    data.scores_chosen[4, 1] = np.inf
    with pytest.raises(PreforchError, match=r"row 5, column 'score.harmless'"):
        train_adapter(config(tiny_encoder_dir), data, progress=False)
    one = PreferenceData(prompts=["a", "b"], chosen=["x", "y"], objectives=["only"],
                         scores_chosen=np.zeros((2, 1)))
    with pytest.raises(PreforchError, match="at least 2"):
        train_adapter(config(tiny_encoder_dir), one, progress=False)
    no_rej = synthetic(30)
    no_rej.scores_rejected = None
    with pytest.raises(PreforchError, match="score_rejected"):
        train_adapter(config(tiny_encoder_dir, loss="pairwise"), no_rej, progress=False)


def test_objective_mismatch_is_refused(trained):
    with pytest.raises(PreforchError, match="differ"):
        trained.adapter.check_objectives(["harmless", "helpful", "humor"])


def test_cli_train_then_weights(tiny_encoder_dir, tmp_path, capsys):
    data_file = tmp_path / "data.jsonl"
    write_table(rows_from_preference_data(synthetic(150)), data_file)
    out = tmp_path / "adapter"
    argv = ["adapter", "train", "--data", str(data_file), "--output", str(out), "--encoder-path",
            str(tiny_encoder_dir), "--hidden", "16", "--epochs", "5", "--cache-embeddings", "false",
            "--progress", "false"]
    assert main(argv) == 0
    assert "top-1 agreement" in capsys.readouterr().out
    assert {"config.json", "model.safetensors", "normalizer.json", "report.json"} <= {p.name for p in out.iterdir()}
    assert main(argv) == 2  # exists, no --overwrite
    assert "output folder exists" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    capsys.readouterr()
    assert main(["weights", "--adapter", str(out), "how do I sort a list?", "tell me a joke"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and set(lines[0]["weights"]) == set(OBJECTIVES)
    assert sum(lines[0]["weights"].values()) == pytest.approx(1.0)
    assert main(["weights", "--adapter", str(out), "tell me a joke", "--user-weights", "1,0,0", "--blend", "0.5"]) == 0
    blended = json.loads(capsys.readouterr().out)
    w, a = blended["weights"], blended["adapter_weights"]
    assert w["helpful"] == pytest.approx(0.5 + 0.5 * a["helpful"]) and w["humor"] == pytest.approx(0.5 * a["humor"])
    assert main(["weights", "--adapter", str(out), "x", "--user-weights", "1,-1,0"]) == 2
    assert "non-negative" in capsys.readouterr().err


def test_cli_reports_bad_data_on_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "chosen": "x", "score.a": 1, "score.b": 2}\n'
                   '{"prompt": "", "chosen": "y", "score.a": 1, "score.b": 2}\n')
    assert main(["adapter", "train", "--data", str(bad), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 2" in err and "empty prompt" in err
    assert not (tmp_path / "o").exists()


def test_job_config_from_yaml(tmp_path):
    from preforch.config import build_config

    path = tmp_path / "c.yaml"
    path.write_text("tau: 0.5\nloss: mix\nnorm_clip: null\n")
    job = build_config(TrainAdapterJob, path, {"hidden": "8"})
    assert (job.tau, job.loss, job.norm_clip, job.hidden) == (0.5, "mix", None, 8)
    flagged = build_config(TrainAdapterJob, None, {"scorers": "[{type: rule, name: concise}]", "overwrite": "true"})
    assert flagged.scorers == [{"type": "rule", "name": "concise"}] and flagged.overwrite is True
    path.write_text("taux: 1\n")
    with pytest.raises(PreforchError, match="unknown setting"):
        build_config(TrainAdapterJob, path)
    path.write_text("loss: l2\n")
    with pytest.raises(PreforchError, match="expected one of"):
        build_config(TrainAdapterJob, path)


def test_run_train_job_with_given_data(tiny_encoder_dir, tmp_path):
    job = TrainAdapterJob(encoder_path=str(tiny_encoder_dir), hidden=8, epochs=3, output=str(tmp_path / "a"),
                          cache_embeddings=False, progress=False)
    result = run_train_job(job, synthetic(60))
    assert json.loads((tmp_path / "a" / "report.json").read_text())["n_train"] == result.report.n_train


def test_auto_loss_is_pairwise_with_rejected_responses_and_forward_kl_without(trained, tiny_encoder_dir):
    assert trained.adapter.config.loss == "pairwise"  # the saved adapter names the loss that trained it
    data = synthetic(60)
    data.scores_rejected, data.rejected = None, None
    result = train_adapter(config(tiny_encoder_dir, epochs=1, test_fraction=0.0), data, progress=False)
    assert result.adapter.config.loss == "forward_kl"
    with pytest.raises(PreforchError, match="loss 'mix' needs rejected responses.*set loss: forward_kl"):
        train_adapter(config(tiny_encoder_dir, epochs=1, loss="mix"), data, progress=False)
