"""Scoring preference rows in memory: every preferred (and rejected) response on every objective, and the rows
with ``score.<objective>`` / ``score_rejected.<objective>`` columns set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from preforch.data.rows import REJECTED_SCORE_PREFIX, SCORE_PREFIX, ColumnMap, OnBadRows, ParsedRows, parse_preference_rows
from preforch.rewards.cache import ScoreCache
from preforch.rewards.multi import MultiScorer
from preforch.rewards.scorer import Scorer
from preforch.types import PreferenceData

__all__ = ["as_multi", "attach_scores", "parse_rows", "score_preference_data", "score_rows"]


def parse_rows(rows: list[dict[str, Any]], source: str, columns: ColumnMap | None = None,
               on_bad_rows: OnBadRows = "error") -> ParsedRows:
    """Prompts and responses of ``rows`` (existing score columns are ignored: they will be replaced)."""
    clean = [{k: v for k, v in r.items() if not k.startswith((SCORE_PREFIX, REJECTED_SCORE_PREFIX))}
             if isinstance(r, dict) else r for r in rows]
    return parse_preference_rows(clean, source, columns=columns, on_bad_rows=on_bad_rows)


def score_preference_data(data: PreferenceData, multi: MultiScorer, row_offset: int = 0,
                          source: str = "<rows>") -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of the chosen and (when present) rejected responses. Shapes: [N, K], [N, K] or None."""
    n = len(data)
    responses = data.chosen + (data.rejected or [])
    prompts = data.prompts + (data.prompts if data.rejected is not None else [])

    def name_row(i: int) -> str:
        which = "preferred" if i < n else "rejected"
        return f"{source}: row {row_offset + i % n + 1} ({which} response)" if n else source

    scores = multi.score(prompts, responses, name_row=name_row)  # [N or 2N, K]
    return scores[:n], (scores[n:] if data.rejected is not None else None)


def attach_scores(rows: list[dict[str, Any]], objectives: list[str], chosen: np.ndarray,
                  rejected: np.ndarray | None) -> list[dict[str, Any]]:
    """``rows`` with ``score.<objective>`` (and ``score_rejected.<objective>``) columns set (new dicts).

    Columns of the same name are replaced; score columns of other objectives are kept as they were.
    """
    out = []
    for i, row in enumerate(rows):
        new = dict(row)
        for k, name in enumerate(objectives):
            new[f"{SCORE_PREFIX}{name}"] = float(chosen[i, k])
        if rejected is not None:
            for k, name in enumerate(objectives):
                new[f"{REJECTED_SCORE_PREFIX}{name}"] = float(rejected[i, k])
        out.append(new)
    return out


def score_rows(rows: list[dict[str, Any]], scorer: Scorer | Sequence[Scorer], cache: ScoreCache | None = None,
               batch_size: int = 64, progress: bool = False, source: str = "<rows>") -> list[dict[str, Any]]:
    """Score rows of any accepted shape in this process; returns the rows with score columns added."""
    multi = as_multi(scorer, batch_size, cache, progress)
    chosen, rejected = score_preference_data(parse_rows(rows, source).data, multi, source=source)
    return attach_scores(rows, multi.objectives, chosen, rejected)


def as_multi(scorer: Scorer | Sequence[Scorer], batch_size: int, cache: ScoreCache | None,
              progress: bool) -> MultiScorer:
    scorers = list(scorer) if isinstance(scorer, (list, tuple)) else [scorer]
    return MultiScorer(scorers, batch_size=batch_size, cache=cache, progress=progress)
