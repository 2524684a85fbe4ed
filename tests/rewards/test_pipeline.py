"""score_rows / score_dataset / `preforch score`: rows in, the same rows out with score columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_rm import make_bert_classifier

from preforch.cli.main import main
from preforch.config import build_config
from preforch.data.load import read_table, write_table
from preforch.errors import PreforchError
from preforch.recipes.score import ScoreConfig, score_dataset
from preforch.rewards.cache import ScoreCache
from preforch.rewards.callable import CallableScorer
from preforch.rewards.registry import build_scorers
from preforch.rewards.rules import ConcisenessScorer
from preforch.rewards.scoring import score_rows

REPO = Path(__file__).resolve().parents[2]


def make_rows(n: int = 7) -> list[dict]:
    return [{"id": i, "prompt": f"Question {i}: how do I do thing {i}?", "chosen": "Do it like this. " * (i + 1),
             "rejected": "No." if i % 2 else "I will not help you with that, you idiot.", "kind": "k"}
            for i in range(n)]


@pytest.fixture
def data_file(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    write_table(make_rows(), path)
    return path


def test_score_rows_adds_columns_and_keeps_rows():
    rows = make_rows(3)
    out = score_rows(rows, [ConcisenessScorer(), CallableScorer(lambda p, r: [len(x) for x in r], "chars", "c")])
    assert [r["id"] for r in out] == [0, 1, 2] and out[0]["kind"] == "k"
    assert out[1]["score.chars"] == len(rows[1]["chosen"]) and out[1]["score_rejected.chars"] == 3
    assert out[2]["score.concise"] == pytest.approx(-np.log1p(12))
    assert "score.concise" not in rows[0]  # the input rows are not modified


def test_score_rows_without_rejected_and_hh_shape():
    hh = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello friend", "rejected": "\n\nHuman: hi\n\nAssistant: go"}]
    out = score_rows(hh, ConcisenessScorer())
    assert out[0]["score.concise"] == pytest.approx(-np.log(3))
    assert out[0]["score_rejected.concise"] == pytest.approx(-np.log(2))
    only_chosen = score_rows([{"prompt": "p", "chosen": "a b c"}], ConcisenessScorer())
    assert "score_rejected.concise" not in only_chosen[0]


def test_nan_in_a_rejected_response_names_the_row(tmp_path):
    rows = make_rows(4)
    fn = CallableScorer(lambda p, r: [float("nan") if x == "No." else 0.0 for x in r], "x", "nan-no")
    with pytest.raises(PreforchError, match=r"row 2 \(rejected response\): objective 'x' scored nan"):
        score_rows(rows, fn, cache=ScoreCache(tmp_path / "c.sqlite"), source="pairs.jsonl")


def test_score_dataset_jsonl_and_parquet_and_overwrite(tmp_path, data_file):
    scorers = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment"}]
    cfg = ScoreConfig(input=str(data_file), output=str(tmp_path / "out.parquet"), scorers=scorers,
                      cache_path=str(tmp_path / "c.sqlite"), progress=False)
    result = score_dataset(cfg)
    assert (result.rows, result.responses, result.objectives) == (7, 14, ["concise", "positive"])
    assert result.scored == 28 and result.cache_hits == 0
    out = read_table(tmp_path / "out.parquet")
    assert [r["id"] for r in out] == list(range(7))
    assert set(out[0]) >= {"score.concise", "score.positive", "score_rejected.concise", "score_rejected.positive"}
    with pytest.raises(PreforchError, match="output file exists"):
        score_dataset(cfg)
    cfg.overwrite, cfg.output = True, str(tmp_path / "out.jsonl")
    again = score_dataset(cfg)
    assert again.cache_hits == 28 and again.scored == 0
    assert read_table(tmp_path / "out.jsonl") == out


def test_cache_false_writes_no_cache(tmp_path, data_file):
    cfg = ScoreConfig(input=str(data_file), output=str(tmp_path / "o.jsonl"), scorers=[{"type": "rule",
                      "name": "concise"}], cache=False, cache_path=str(tmp_path / "c.sqlite"), progress=False)
    assert score_dataset(cfg).cache_hits == 0
    assert not (tmp_path / "c.sqlite").exists()


def test_bad_specs_and_settings(tmp_path, data_file):
    with pytest.raises(PreforchError, match="expected a mapping with 'type'"):
        build_scorers([{"type": "magic"}])
    with pytest.raises(PreforchError, match=r"unknown key\(s\) \['colour'\]"):
        build_scorers([{"type": "rule", "name": "concise", "colour": "red"}])
    with pytest.raises(PreforchError, match="needs 'name'"):
        build_scorers([{"type": "rule"}])
    with pytest.raises(PreforchError, match="setting 'max_length'"):
        build_scorers([{"type": "hf", "path": str(tmp_path), "max_length": "long"}])
    with pytest.raises(PreforchError, match=".jsonl or .parquet"):
        ScoreConfig(input="a.jsonl", output="b.csv")
    cfg = ScoreConfig(input=str(data_file), output=str(tmp_path / "o.jsonl"), progress=False,
                      scorers=[{"type": "rule", "name": "concise"}, {"type": "rule", "name": "concise"}])
    with pytest.raises(PreforchError, match="duplicate objective"):
        score_dataset(cfg)
    assert not (tmp_path / "o.jsonl").exists()


def test_hf_spec_end_to_end(tmp_path, data_file):
    rm = make_bert_classifier(tmp_path / "rm")
    specs = [{"type": "hf", "path": str(rm), "objective": "harmless", "template": "plain", "max_length": 12,
              "device": "cpu"}, {"type": "rule", "name": "concise"}]
    cfg = ScoreConfig(input=str(data_file), output=str(tmp_path / "o.jsonl"), scorers=specs, cache=False,
                      progress=False)
    result = score_dataset(cfg)
    assert result.truncated > 0 and result.objectives == ["harmless", "concise"]
    out = read_table(tmp_path / "o.jsonl")
    assert np.isfinite([r["score.harmless"] for r in out]).all()


def test_cli_score_end_to_end(tmp_path, data_file, capsys):
    out_path = tmp_path / "scored.jsonl"
    argv = ["score", "--input", str(data_file), "--output", str(out_path), "--cache-path",
            str(tmp_path / "c.sqlite"), "--progress", "false", "--scorers",
            "[{type: rule, name: concise}, {type: rule, name: profanity, objective: clean}]"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "scored 7 rows (14 responses) on 2 objective(s)" in text and "responses/s" in text
    rows = read_table(out_path)
    assert len(rows) == 7 and rows[3]["score_rejected.clean"] > 0.5
    assert rows[0]["score_rejected.clean"] < rows[0]["score.clean"]  # "you idiot" is less clean
    assert main(argv) == 2  # refuses to overwrite
    assert "output file exists" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert "cache hits 28 of 28" in capsys.readouterr().out


def test_cli_score_bad_input_is_one_line(tmp_path, capsys):
    assert main(["score", "--input", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "o.jsonl"),
                 "--scorers", "[{type: rule, name: concise}]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data file not found" in err and len(err.splitlines()) == 1


def test_score_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--config", "--scorers", "--overwrite", "--cache-path", "--batch-size", "--input", "--output"):
        assert flag in text


def test_shipped_configs_parse_and_tiny_runs(tmp_path):
    full = build_config(ScoreConfig, REPO / "configs" / "score.yaml")
    assert full.scorers == [{"type": "builtin"}]
    tiny = build_config(ScoreConfig, REPO / "configs" / "tiny" / "score.yaml",
                        {"output": str(tmp_path / "tiny.jsonl"), "cache_path": str(tmp_path / "c.sqlite"),
                         "progress": False})
    rows = read_table(REPO / tiny.input)[:50]
    write_table(rows, tmp_path / "in.jsonl")
    tiny.input = str(tmp_path / "in.jsonl")
    result = score_dataset(tiny)
    assert result.objectives == ["concise", "positive", "non_profane"] and result.responses == 100
    assert json.loads((tmp_path / "tiny.jsonl").read_text().splitlines()[0])["chosen"] == rows[0]["chosen"]


def test_heads_spec_scores_like_the_heads_object(tmp_path, tiny_encoder_dir):
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    heads = SharedEncoderHeads(HeadsConfig(heads=[HeadSpec("harmless"), HeadSpec("helpful")],
                                           encoder=str(tiny_encoder_dir), max_length=64, prompt_tokens=16))
    heads.save_pretrained(tmp_path / "heads")
    (scorer,) = build_scorers([{"type": "heads", "path": str(tmp_path / "heads"), "device": "cpu"}])
    rows = make_rows(4)
    out = score_rows(rows, scorer)
    direct = heads.score([r["prompt"] for r in rows], [r["chosen"] for r in rows])  # [4, 2]
    np.testing.assert_allclose([[r["score.harmless"], r["score.helpful"]] for r in out], direct, atol=1e-5)


def test_builtin_spec_when_shipped():
    from preforch.models.builtin import BUILTIN_HEADS

    if not all((p / "model.safetensors").is_file() for p in BUILTIN_HEADS.values()):
        pytest.skip("built-in reward heads are not shipped in this checkout yet")
    (scorer,) = build_scorers([{"type": "builtin", "device": "cpu"}])
    out = score_rows(make_rows(2), scorer)
    assert {"score.harmless", "score.helpful", "score.concise"} <= set(out[0])


def test_existing_score_columns_are_replaced_or_kept():
    rows = [{"prompt": "p", "chosen": "a b", "rejected": "c", "score.concise": 9.0, "score.humor": 0.5}]
    out = score_rows(rows, ConcisenessScorer())
    assert out[0]["score.concise"] == pytest.approx(-np.log(3)) and out[0]["score.humor"] == 0.5
