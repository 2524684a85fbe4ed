"""Shared helpers of the hostile-input suite (imported as ``from hostile_helpers import ...``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

OBJECTIVES = ["helpful", "harmless", "concise"]
RULE_SCORER = "[{type: rule, name: concise}]"


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``preforch ARGV`` in this process; (exit code, stdout, stderr)."""
    from preforch.cli.main import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *argv, match: str = "") -> str:
    """Run the command and check it fails with exactly one stderr line ``preforch: error: ...`` matching
    ``match`` (a regular expression); returns that line."""
    rc, _, err = cli(capsys, *argv)
    # transformers' "Loading weights" bars go to stderr when it was imported before main() switched them off
    # (tests run many commands in one process); a real command run starts clean.
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line and "it/s]" not in line]
    assert rc == 2, f"exit code {rc}, stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("preforch: error: "), f"stderr is not one error line: {err!r}"
    assert re.search(match, lines[0]), f"{lines[0]!r} does not match {match!r}"
    return lines[0]


def no_leftovers(folder: Path, allowed: set[str] | None = None) -> list[str]:
    """Hidden staging / backup files left in ``folder`` (``.NAME.*.tmp``, ``.NAME.old``)."""
    return sorted(p.name for p in Path(folder).iterdir()
                  if p.name.startswith(".") and (p.name.endswith((".tmp", ".old")) or ".tmp" in p.name)
                  and p.name not in (allowed or set()))


def scored_rows(n: int = 30, seed: int = 0) -> list[dict]:
    """Rows with prompt/chosen/rejected and three raw score columns (no scorer needed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {"prompt": f"question number {i} about topic {i % 5}", "chosen": f"answer {i}",
               "rejected": f"bad answer {i}", "kind": ["a", "b", "c"][i % 3]}
        for k, name in enumerate(OBJECTIVES):
            row[f"score.{name}"] = float(rng.normal() + (2.0 if i % 3 == k else 0.0))
            row[f"score_rejected.{name}"] = float(rng.normal())
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build_adapter(folder: Path, encoder_dir: Path, **settings) -> Path:
    """An adapter folder built without training (random MLP, fitted normaliser) on the tiny encoder."""
    from preforch.adapter import AdapterConfig, PreferenceAdapter
    from preforch.rewards.normalize import Normalizer

    config = AdapterConfig(encoder_path=str(encoder_dir), hidden=8, cache_embeddings=False, **settings)
    norm = Normalizer(list(OBJECTIVES)).fit(np.random.default_rng(0).normal(size=(20, 3)))
    PreferenceAdapter(config, list(OBJECTIVES), norm, dim=32).save_pretrained(folder)
    return folder
