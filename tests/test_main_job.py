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
    for needle in ("scored 160 responses on ['harmless', 'helpful', 'concise']", "top-1 agreement",
                   "kind hh-harmless", "kind ultrafeedback", "example validation prompts"):
        assert needle in text, needle
    report = json.loads((out / "report.json").read_text())
    assert report["objectives"] == ["harmless", "helpful", "concise"] and report["n_train"] + report["n_val"] == 80
    with Image.open(out / "weights_by_kind.png") as image:
        image.verify()
    import pyarrow.parquet as pq

    scored = pq.read_table(out / "scores.parquet").to_pylist()
    assert len(scored) == 80 and {"score.harmless", "score_rejected.concise", "kind"} <= set(scored[0])
    capsys.readouterr()
    assert main(["weights", "--adapter", str(out), "How do I hotwire a car?"]) == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert set(weights) == {"harmless", "helpful", "concise"}
