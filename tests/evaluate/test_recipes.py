"""The shipped recipes parse, and run offline end to end once their model paths point at tiny local models."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from preforch.cli.main import main
from preforch.data.load import write_table
from preforch.errors import PreforchError
from preforch.recipes.paper import build_recipe, read_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "gpu").glob("*.yaml"))


def test_recipes_exist_and_validate():
    assert {p.stem for p in RECIPES} >= {"helpful_assistant", "reddit_summary", "ultrafeedback"}
    for path in RECIPES:
        configs = build_recipe(read_recipe(path), str(path))
        assert set(configs) == {"score", "adapter", "evaluate_adapter"}
        assert all(s["type"] == "hf" for s in configs["score"].scorers)
        assert configs["evaluate_adapter"].adapter == configs["adapter"].output


def test_recipe_bad_setting(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("evaluate_adapter: {adapter: a, data: d, resolutoin: 3}\n")
    with pytest.raises(PreforchError, match="section 'evaluate_adapter': unknown setting"):
        build_recipe(read_recipe(path), str(path))


def _tiny_classifier(folder: Path, seed: int) -> Path:
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from preforch.models.paths import minilm_path

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, initializer_range=0.3)
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm_path() / name).is_file():
            shutil.copy(minilm_path() / name, folder / name)
    return folder


@pytest.mark.parametrize("recipe", ["helpful_assistant", "reddit_summary"])
def test_recipe_runs_offline_with_tiny_stand_ins(recipe, tiny_encoder_dir, tmp_path):
    sections = read_recipe(next(p for p in RECIPES if p.stem == recipe))
    rng = np.random.default_rng(0)
    rows = [{"prompt": f"question {i} about {rng.choice(['cats', 'code', 'tax', 'war'])}",
             "chosen": f"a careful answer {i} " * int(rng.integers(1, 4)), "rejected": f"meh {i}",
             "kind": ["a", "b"][i % 2]} for i in range(48)]
    write_table(rows, tmp_path / "data.jsonl")
    for i, spec in enumerate(sections["score"]["scorers"]):
        spec["path"] = str(_tiny_classifier(tmp_path / f"rm{i}", seed=i))
        spec.update(device="cpu", dtype="float32", max_length=128)
    sections["score"].update(input=str(tmp_path / "data.jsonl"), output=str(tmp_path / "scored.jsonl"),
                             cache=False, progress=False, device="cpu")
    sections["adapter"].update(data=str(tmp_path / "scored.jsonl"), output=str(tmp_path / "adapter"),
                               encoder_path=str(tiny_encoder_dir), hidden=8, epochs=3, cache_embeddings=False,
                               progress=False, val_fraction=0.25, test_fraction=0.25, plot=False)
    sections["evaluate_adapter"].update(adapter=str(tmp_path / "adapter"), data=str(tmp_path / "scored.jsonl"),
                                        output_dir=str(tmp_path / "eval"), resolution=4, plots=False)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(sections))
    assert main(["evaluate", "recipe", "--config", str(recipe_file)]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())["result"]
    objectives = [s["objective"] for s in sections["score"]["scorers"]]
    assert report["objectives"] == objectives
    from preforch.data.load import load_preference_data
    from preforch.data.split import split_by_prompt

    scored = load_preference_data(tmp_path / "scored.jsonl")
    assert report["n_test"] == len(split_by_prompt(scored.prompts, 0.25, 0.25, 0).test) > 0
    assert set(report["pairwise"]) <= {"all", "a", "b"} and "all" in report["pairwise"]


def test_recipe_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "recipe", "--help"])
    assert exit_info.value.code == 0 and "--stages" in capsys.readouterr().out
