"""A test-size version of the README's main job: embedded data, built-in reward models, MiniLM, adapter."""

import json
from pathlib import Path

from PIL import Image

from preforch.cli.main import main

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "example.yaml"


def test_main_job_small(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PREFORCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "example"
    argv = ["adapter", "train", "--config", str(CONFIG), "--output", str(out), "--limit-per-kind", "40",
            "--epochs", "5", "--progress", "false", "--score-cache", "false"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for needle in ("scored 240 responses on ['harmless', 'helpful', 'concise']", "top-1 agreement",
                   "kind hh-harmless", "kind hh-helpful", "kind ultrafeedback", "example test prompts", "test pairwise accuracy"):
        assert needle in text, needle
    report = json.loads((out / "report.json").read_text())
    assert report["objectives"] == ["harmless", "helpful", "concise"]
    assert report["n_train"] + report["n_val"] + report["n_test"] == 120 and report["test"]["n_test"] > 0
    split = json.loads((out / "split.json").read_text())
    sides = [set(split["fingerprints"][k]) for k in ("train", "val", "test")]
    assert all(sides) and not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    config = json.loads((out / "config.json").read_text())
    assert config["adapter"]["prompt_view"] in ("last_user", "context") and config["format_version"] == 2
    with Image.open(out / "weights_by_kind.png") as image:
        image.verify()
    import pyarrow.parquet as pq

    scored = pq.read_table(out / "scores.parquet").to_pylist()
    assert len(scored) == 120 and {"score.harmless", "score_rejected.concise", "kind"} <= set(scored[0])
    assert isinstance(scored[0]["prompt"], list) and scored[0]["prompt"][-1]["role"] == "user"
    capsys.readouterr()
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: How do I hotwire a car?\n\nAssistant:"
    messages = json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                           {"role": "user", "content": "How do I hotwire a car?"}])
    assert main(["weights", "--adapter", str(out), "How do I hotwire a car?", hh, "--messages", messages]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(rows[0]["weights"]) == {"harmless", "helpful", "concise"}
    assert rows[1]["weights"] == rows[2]["weights"]  # one conversation, two shapes, the same weights
