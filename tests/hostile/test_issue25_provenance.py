"""Issue 25: scorers were matched by objective name only. An adapter now records the scorers behind each
objective (spec + fingerprint), its data file and the preforch version; serve and generate refuse other scorers
behind the same names unless allowed, and adapters saved before the record load with one warning."""

from __future__ import annotations

import json
import logging

import pytest
from hostile_helpers import write_jsonl

from preforch.errors import PreforchError

SCORERS = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment", "objective": "positive"}]
# the case: the concise rule renamed, standing in for another objective
RENAMED = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "concise", "objective": "positive"}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_dir):
    """(adapter folder, data file) of an adapter trained on rows scored by SCORERS."""
    from preforch.recipes.adapter_train import TrainAdapterJob, run_train_job

    folder = tmp_path_factory.mktemp("provenance")
    rows = [{"prompt": f"question {i} about topic {i % 4}", "chosen": "a kind and useful answer " * (1 + i % 3),
             "rejected": "no" if i % 2 else "that is a terrible idea, go away"} for i in range(40)]
    data = write_jsonl(folder / "pairs.jsonl", rows)
    job = TrainAdapterJob(data=str(data), output=str(folder / "adapter"), scorers=SCORERS,
                          encoder_path=str(tiny_encoder_dir), hidden=8, epochs=2, plot=False, progress=False,
                          cache_embeddings=False, score_cache=False, examples=0)
    run_train_job(job)
    return folder / "adapter", data


def test_adapter_train_records_scorers_data_and_version(trained):
    from preforch import __version__
    from preforch.provenance import file_fingerprint

    adapter, data = trained
    record = json.loads((adapter / "provenance.json").read_text())
    assert record["preforch_version"] == __version__ and record["format_version"] == 1
    assert [s["objectives"] for s in record["scorers"]] == [["concise"], ["positive"]]
    assert record["scorers"][0]["fingerprint"].startswith("rule:concise")
    assert record["scorers"][1]["fingerprint"].startswith("rule:sentiment")
    assert record["scorers"][1]["spec"] == SCORERS[1]
    assert record["data"] == {"source": str(data), "fingerprint": file_fingerprint(data), "rows": 40}


def serve_config(adapter, scorers, **extra):
    from preforch.serve.config import ServeConfig

    return ServeConfig(adapter=str(adapter), scorers=scorers, policy=None, strategy="sample", **extra)


def test_serve_refuses_other_scorers_behind_the_same_names(trained):
    from preforch.serve.engine import ServeEngine

    adapter, _ = trained
    with pytest.raises(PreforchError, match=r"serve: objective 'positive' of adapter .* was trained with scores of "
                                            r"\{type: rule, name: sentiment, objective: positive\} \[rule:sentiment.*"
                                            r"but the scorer given is \{type: rule, name: concise, objective: "
                                            r"positive\} \[rule:concise.*--allow-scorer-mismatch"):
        ServeEngine.load(serve_config(adapter, RENAMED))
    ServeEngine.load(serve_config(adapter, SCORERS)).close()  # its own scorers load


def test_serve_takes_other_scorers_when_allowed_and_says_so(trained, caplog):
    from preforch.serve.engine import ServeEngine

    adapter, _ = trained
    with caplog.at_level(logging.WARNING):
        ServeEngine.load(serve_config(adapter, RENAMED, allow_scorer_mismatch=True)).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("objective 'positive'" in w and "allowed by allow_scorer_mismatch" in w for w in warnings)


def test_an_adapter_without_provenance_loads_with_one_warning(trained, tmp_path, caplog):
    import shutil

    from preforch.serve.engine import ServeEngine

    old = tmp_path / "old"
    shutil.copytree(trained[0], old)
    (old / "provenance.json").unlink()
    with caplog.at_level(logging.WARNING):
        ServeEngine.load(serve_config(old, RENAMED)).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "provenance" in w]) == 1, warnings
    assert "cannot be checked" in warnings[0]


def test_generate_refuses_other_scorers_before_loading_the_policy(trained, tmp_path, capsys):
    from hostile_helpers import one_line_error

    adapter, _ = trained
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n")
    config = tmp_path / "generate.yaml"
    config.write_text(json.dumps({"scorers": RENAMED}))  # JSON is YAML
    one_line_error(capsys, "generate", "--config", config, "--prompts-file", prompts, "--best-of", "2", "--adapter",
                   adapter, "--output", tmp_path / "out.jsonl", "--policy", tmp_path / "none",
                   match=r"generate: objective 'positive' .*rule:sentiment.*rule:concise")


def test_a_damaged_provenance_file_is_one_line(trained, tmp_path):
    import shutil

    from preforch.provenance import check_scorers

    bad = tmp_path / "bad"
    shutil.copytree(trained[0], bad)
    (bad / "provenance.json").write_text(json.dumps({"format_version": 1, "scorers": [{"objectives": "x"}]}))
    with pytest.raises(PreforchError, match=r"provenance.json: 'scorers' must be null or a list"):
        check_scorers(bad, SCORERS, [], "serve")


def scored_file(folder, data, scorers, name):
    """``data`` scored by ``scorers`` through `preforch score`'s job (which writes the record beside it)."""
    from preforch.recipes.score import ScoreConfig, score_dataset

    out = folder / name
    score_dataset(ScoreConfig(input=str(data), output=str(out), scorers=scorers, cache=False, progress=False))
    return out


def test_score_records_what_made_its_columns_and_adapter_train_carries_it(trained, tmp_path, tiny_encoder_dir):
    from preforch.provenance import file_fingerprint, read_provenance
    from preforch.recipes.adapter_train import TrainAdapterJob, run_train_job

    scored = scored_file(tmp_path, trained[1], SCORERS, "scored.jsonl")
    record = json.loads((tmp_path / "scored.jsonl.provenance.json").read_text())
    assert [s["spec"] for s in record["scorers"]] == SCORERS
    assert record["data"] == {"source": str(trained[1]), "fingerprint": file_fingerprint(trained[1]), "rows": 40}
    # an adapter trained on the scored file (no scorers run) records the scorers behind its columns
    job = TrainAdapterJob(data=str(scored), output=str(tmp_path / "adapter"), scorers=[],
                          encoder_path=str(tiny_encoder_dir), hidden=8, epochs=2, plot=False, progress=False,
                          cache_embeddings=False, score_cache=False, examples=0)
    run_train_job(job)
    assert read_provenance(tmp_path / "adapter")["scorers"] == record["scorers"]


def align_config(tmp_path, adapter, scorers):
    config = tmp_path / "align.yaml"
    config.write_text(json.dumps({"scorers": scorers, "adapter": str(adapter), "policy": str(tmp_path / "none"),
                                  "max_steps": 1, "progress": False, "output_dir": str(tmp_path / "run")}))
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "hello"}, {"prompt": "how are you"}])
    return ["--config", config, "--data", prompts]


@pytest.mark.parametrize("route", ["grpo", "rloo", "dpo", "conditioned"])
def test_align_refuses_other_scorers_before_loading_the_policy(trained, tmp_path, capsys, route):
    from hostile_helpers import one_line_error

    one_line_error(capsys, "align", route, *align_config(tmp_path, trained[0], RENAMED),
                   match=rf"align {route}: objective 'positive' of adapter .*rule:sentiment.*rule:concise.*"
                         r"--allow-scorer-mismatch")


def test_align_takes_other_scorers_when_allowed_and_old_adapters_with_a_warning(trained, tmp_path, capsys, caplog):
    import shutil

    from hostile_helpers import one_line_error

    with caplog.at_level(logging.WARNING):  # past the check: the (missing) policy is what stops it now
        one_line_error(capsys, "align", "grpo", *align_config(tmp_path, trained[0], RENAMED),
                       "--allow-scorer-mismatch", "true", match="none")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("allowed by allow_scorer_mismatch" in w for w in warned) == 1, warned
    old = tmp_path / "old"
    shutil.copytree(trained[0], old)
    (old / "provenance.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        one_line_error(capsys, "align", "grpo", *align_config(tmp_path, old, RENAMED), match="none")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("cannot be checked" in w for w in warned) == 1, warned


def test_evaluate_adapter_refuses_scores_of_other_scorers(trained, tmp_path, capsys, caplog):
    from hostile_helpers import one_line_error

    adapter, data = trained
    renamed = scored_file(tmp_path, data, RENAMED, "renamed.jsonl")
    args = ["evaluate", "adapter", "--adapter", adapter, "--data", renamed, "--reward-model-prompts", "[]",
            "--bootstrap", "0", "--plots", "false", "--output-dir", tmp_path / "eval"]
    one_line_error(capsys, *args, match=r"evaluate adapter: objective 'positive' of adapter .*rule:sentiment.*"
                                        r"the scores of .*renamed.jsonl come from .*rule:concise")
    with caplog.at_level(logging.WARNING):
        assert main_rc(capsys, *args, "--allow-scorer-mismatch", "true") == 0
    assert any("allowed by allow_scorer_mismatch" in r.getMessage() for r in caplog.records)
    own = scored_file(tmp_path, data, SCORERS, "own.jsonl")  # the adapter's own scorers: no word
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main_rc(capsys, *args[:5], own, *args[6:-1], tmp_path / "eval_own") == 0
    assert not [r for r in caplog.records if "provenance" in r.getMessage() or "scorer" in r.getMessage()]


def test_evaluate_responses_refuses_scores_of_other_scorers(trained, tmp_path, capsys):
    from hostile_helpers import one_line_error

    from preforch.provenance import make_provenance, provenance_path, scorer_records
    from preforch.rewards.registry import build_scorers

    rows = [{"prompt": f"question {i}", "response": "yes " * j, "score.concise": -j, "score.positive": 0.1 * j}
            for i in range(3) for j in range(1, 3)]
    responses = write_jsonl(tmp_path / "candidates.jsonl", rows)
    provenance_path(responses).write_text(json.dumps(make_provenance(
        scorer_records(RENAMED, build_scorers(RENAMED)), "prompts", len(rows))))
    one_line_error(capsys, "evaluate", "responses", "--responses", responses, "--adapter", trained[0], "--plots",
                   "false", "--output-dir", tmp_path / "eval",
                   match=r"evaluate responses: objective 'positive' .*rule:sentiment.*rule:concise")


def main_rc(capsys, *argv) -> int:
    from preforch.cli.main import main

    rc = main([str(a) for a in argv])
    capsys.readouterr()
    return rc
