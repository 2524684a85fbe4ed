"""Several scorers as one: K columns, cached, batched (length-sorted) with a progress bar, every output checked."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from preforch.conversation import as_conversations
from preforch.errors import PreforchError
from preforch.rewards.cache import ScoreCache, pair_key
from preforch.rewards.callable import as_score_matrix
from preforch.rewards.scorer import Scorer

logger = logging.getLogger(__name__)


class NonFiniteScoreError(PreforchError):
    """A scorer returned NaN or ±inf. ``index`` is the 0-based input position; ``objective`` its column."""

    def __init__(self, message: str, index: int, objective: str) -> None:
        super().__init__(message)
        self.index = index
        self.objective = objective


def _row_name(i: int) -> str:
    return f"row {i + 1}"


class MultiScorer:
    """Runs ``scorers`` one after another and stacks their columns. Shape of ``score``: [N, K].

    With a ``cache``, each scorer's scores are looked up first and only the misses are scored, in
    length-sorted chunks of ``batch_size``; each chunk is committed before the next starts, so an
    interrupted or failed run keeps what it scored. ``hits`` / ``scored`` count the last call.
    """

    def __init__(self, scorers: Sequence[Scorer], batch_size: int = 256, cache: ScoreCache | None = None,
                 progress: bool = False) -> None:
        if not scorers:
            raise PreforchError("no scorers configured; give at least one")
        names = [o for s in scorers for o in s.objectives]
        dupes = sorted(n for n, c in Counter(names).items() if c > 1)
        if dupes:
            raise PreforchError(f"duplicate objective name(s) {dupes} across scorers {names}; "
                                "rename them (setting 'objective') so each column is unique")
        if batch_size < 1:
            raise PreforchError(f"batch_size must be >= 1, got {batch_size}")
        self.scorers = list(scorers)
        self.objectives = names
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.hits = 0
        self.scored = 0

    def identity(self) -> str:
        return "multi[" + "|".join(s.identity() for s in self.scorers) + "]"

    def score(self, prompts, responses: list[str],
              name_row: Callable[[int], str] = _row_name) -> np.ndarray:
        """Raw scores of every pair on every objective. Shape: [N, K], float64, in input order.

        ``prompts``: conversations (or texts / message lists, parsed into conversations). ``name_row(i)``
        describes input ``i`` in error messages (default "row i+1").
        """
        prompts = as_conversations(prompts)
        if len(prompts) != len(responses):
            raise PreforchError(f"{len(prompts)} prompts but {len(responses)} responses")
        n = len(prompts)
        out = np.full((n, len(self.objectives)), np.nan)  # [N, K]
        keys = [pair_key(p.key(), r) for p, r in zip(prompts, responses)] if self.cache is not None else []
        plan: list[tuple[Scorer, int, np.ndarray]] = []  # (scorer, first column, inputs still to score)
        col, self.hits, self.scored = 0, 0, 0
        for scorer in self.scorers:
            k = len(scorer.objectives)
            todo = np.arange(n)
            if self.cache is not None:
                found, values = self.cache.get_many(scorer.identity(), keys, k)  # [N], [N, k]
                out[:, col : col + k] = values
                todo = np.flatnonzero(~found)
                self.hits += int(found.sum())
            plan.append((scorer, col, todo))
            col += k
        lengths = np.array([len(p.text()) + len(r) for p, r in zip(prompts, responses)], dtype=np.int64)  # [N]
        total = sum(len(todo) for _, _, todo in plan)
        with tqdm(total=total, desc="score", unit="resp", disable=not self.progress or total == 0) as bar:
            for scorer, col, todo in plan:
                before = getattr(scorer, "truncated", 0)
                todo = todo[np.argsort(-lengths[todo], kind="stable")]  # longest first, as the encoders do
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start : start + self.batch_size]
                    self._score_chunk(scorer, col, chunk, prompts, responses, keys, out, name_row)
                    self.scored += len(chunk)
                    bar.update(len(chunk))
                cut = getattr(scorer, "truncated", 0) - before
                if cut:
                    logger.warning("scorer %s: %d of %d inputs were longer than max_length and truncated",
                                   scorer.objectives, cut, len(todo))
        return out

    def _score_chunk(self, scorer: Scorer, col: int, chunk: np.ndarray, prompts: list,
                     responses: list[str], keys: list[bytes], out: np.ndarray,
                     name_row: Callable[[int], str]) -> None:
        k = len(scorer.objectives)
        values = as_score_matrix(scorer.score([prompts[i] for i in chunk], [responses[i] for i in chunk]),
                                 len(chunk), scorer.objectives, scorer.identity()[:80])  # [B, k]
        finite = np.isfinite(values)  # [B, k]
        good = finite.all(axis=1)  # [B]
        if self.cache is not None:
            self.cache.put_many(scorer.identity(), [keys[i] for i in chunk[good]], values[good])
        out[chunk, col : col + k] = values
        if not good.all():
            bad_rows = np.flatnonzero(~good)
            j = int(bad_rows[np.argmin(chunk[bad_rows])])  # the earliest bad input of this chunk
            obj = int(np.flatnonzero(~finite[j])[0])
            i = int(chunk[j])
            raise NonFiniteScoreError(
                f"{name_row(i)}: objective {scorer.objectives[obj]!r} scored {values[j, obj]} (expected a finite "
                f"number); scores committed so far are kept in the cache", index=i,
                objective=scorer.objectives[obj])
