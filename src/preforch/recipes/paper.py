"""Paper recipes: one YAML file per task of the paper with a section per step (score → adapter → evaluate).

Each section holds the settings of one command (`preforch score`, `preforch adapter train`,
`preforch evaluate adapter`), validated by that command's config class, so a recipe is nothing more than
the three configs side by side; `preforch evaluate recipe --config FILE` runs them in order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from preforch.config import build_config, read_yaml_mapping
from preforch.errors import PreforchError
from preforch.recipes.adapter_train import run_train_job
from preforch.recipes.configs import STAGES, recipe_sections
from preforch.recipes.evaluate import run_adapter_evaluation
from preforch.recipes.score import score_dataset


def read_recipe(path: str | Path) -> dict[str, dict]:
    """The raw sections of a recipe file (``description`` is allowed and ignored)."""
    path = Path(path)
    data = read_yaml_mapping(path, "recipe file", f"sections {list(STAGES)}")
    unknown = sorted(set(data) - {*STAGES, "description"})
    if unknown:
        raise PreforchError(f"{path}: unknown section(s) {unknown}; known: {list(STAGES)}")
    return {k: dict(v or {}) for k, v in data.items() if k in STAGES}


def build_recipe(sections: dict[str, dict], source: str = "recipe") -> dict[str, object]:
    """Typed configs per section; unknown settings and wrong types are errors naming the section."""
    out = {}
    for name, cls in recipe_sections().items():
        if name not in sections:
            continue
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(sections[name]) - known)
        if unknown:
            raise PreforchError(f"{source}: section {name!r}: unknown setting(s) {unknown}")
        try:
            out[name] = build_config(cls, None, sections[name])
        except PreforchError as err:
            raise PreforchError(f"{source}: section {name!r}: {err}") from None
    return out


def run_recipe(sections: dict[str, dict], source: str = "recipe", stages: tuple[str, ...] = STAGES) -> dict[str, Path]:
    """Run the chosen stages in order; returns each stage's output path."""
    configs = build_recipe(sections, source)
    done = {}
    for stage in stages:
        if stage not in configs:
            raise PreforchError(f"{source}: no section {stage!r} to run")
        cfg = configs[stage]
        if stage == "score":
            score_dataset(cfg)
            done[stage] = Path(cfg.output)
        elif stage == "adapter":
            run_train_job(cfg)
            done[stage] = Path(cfg.output)
        else:
            done[stage] = run_adapter_evaluation(cfg)
    return done
