"""Per-objective score normalisation, fitted on a training split and saved with every artifact using it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from preforch.artifacts import read_object, require_format, require_keys
from preforch.atomic import write_json
from preforch.errors import PreforchError

NormMethod = Literal["zscore", "minmax", "rank"]
NORMALIZER_FORMAT = 1
_RANK_GRID = 1001  # quantiles kept per objective for the rank method
_FLAT = 1e-12  # a spread this small relative to the scores' size means the objective was constant
log = logging.getLogger(__name__)


@dataclass
class Normalizer:
    """Maps raw scores [N, K] to normalised scores s̃ [N, K], objective by objective.

    - ``zscore`` (default): (s − mean) / std.
    - ``minmax``: (s − min) / (max − min), so the training range maps to [0, 1].
    - A zero spread (an objective constant in training) is taken as 1 by ``zscore`` and ``minmax``.
    - ``rank``: the empirical CDF (mid-rank for ties) of the training scores, in [0, 1]; at most ``_RANK_GRID``
      order statistics are kept per objective.

    ``clip`` (optional) bounds s̃ to [−clip, clip] after the transform.
    """

    objectives: list[str]
    method: NormMethod = "zscore"
    clip: float | None = 5.0
    stats: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in get_args(NormMethod):
            raise PreforchError(f"normalizer method {self.method!r}: expected one of {get_args(NormMethod)}")
        if len(self.objectives) < 2:
            raise PreforchError(f"normalizer: at least 2 objectives are needed, got {self.objectives}")
        if len(set(self.objectives)) != len(self.objectives):
            raise PreforchError(f"normalizer: duplicate objective names in {self.objectives}")
        if self.clip is not None and (isinstance(self.clip, bool) or not isinstance(self.clip, (int, float))
                                      or not 0 < self.clip < math.inf):
            raise PreforchError(f"normalizer clip must be a positive number or null, got {self.clip!r}")

    @property
    def fitted(self) -> bool:
        return bool(self.stats)

    def fit(self, scores: np.ndarray) -> Normalizer:
        """Fit on raw scores. Shape: [N, K]. Returns self.

        An objective that is constant on the training scores carries no information there; its spread is
        taken as 1 (so a later change of 1e-4 stays 1e-4, not the clip limit or 10,000) and a warning names it.
        """
        scores = _check_scores(scores, len(self.objectives), "fit")
        if self.method == "zscore":
            mean, std = _mean_std(scores)
            flat = std <= _FLAT * np.maximum(1.0, np.abs(mean))
            self.stats = {"mean": mean.tolist(), "std": np.where(flat, 1.0, std).tolist()}
        elif self.method == "minmax":
            lo, hi = scores.min(0), scores.max(0)
            flat = hi <= lo + _FLAT * np.maximum(1.0, np.abs(lo))
            self.stats = {"min": lo.tolist(), "max": np.where(flat, lo + 1.0, hi).tolist()}
        else:
            # Order statistics (all of them, or _RANK_GRID evenly spaced ones): real sample values, so ties
            # keep their exact mid-rank.
            pick = np.unique(np.linspace(0, len(scores) - 1, min(len(scores), _RANK_GRID)).round().astype(int))
            ordered = np.sort(scores, axis=0)
            flat = ordered[-1] == ordered[0]
            self.stats = {"sorted": ordered[pick].T.reshape(-1).tolist()}
        constant = [name for name, f in zip(self.objectives, flat) if f]
        if constant:
            log.warning("objective(s) %s are constant on the training scores: they carry no preference signal there "
                        "(their spread is taken as 1)", constant)
        return self

    def transform(self, scores: np.ndarray, objectives: list[str] | None = None) -> np.ndarray:
        """Raw scores [N, K] → normalised [N, K]; ``objectives`` (if given) must equal the fitted list."""
        if objectives is not None and list(objectives) != list(self.objectives):
            raise PreforchError(
                f"normalizer was fitted on objectives {self.objectives}, got scores for {list(objectives)}"
            )
        if not self.fitted:
            raise PreforchError("normalizer is not fitted: call fit() on training scores first")
        scores = _check_scores(scores, len(self.objectives), "transform")
        if self.method == "zscore":
            out = _standardise(scores, np.asarray(self.stats["mean"]), np.asarray(self.stats["std"]) / 2)
        elif self.method == "minmax":
            lo, hi = np.asarray(self.stats["min"]), np.asarray(self.stats["max"])
            out = _standardise(scores, lo, hi / 2 - lo / 2)
        else:
            ref = np.asarray(self.stats["sorted"]).reshape(len(self.objectives), -1)  # [K, Q]
            out = np.stack([_mid_rank(ref[k], scores[:, k]) for k in range(len(self.objectives))], axis=1)
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        if not np.isfinite(out).all():
            row, col = np.argwhere(~np.isfinite(out))[0]
            raise PreforchError(f"normalizer transform: score {scores[row, col]:.3g} at row {row}, objective "
                                f"{self.objectives[col]!r} is too large for the fitted statistics (set a clip)")
        return out.astype(np.float32)

    def fit_transform(self, scores: np.ndarray) -> np.ndarray:
        return self.fit(scores).transform(scores)

    def to_dict(self) -> dict:
        return {
            "format_version": NORMALIZER_FORMAT,
            "objectives": list(self.objectives),
            "method": self.method,
            "clip": self.clip,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> Normalizer:
        """Rebuild a saved normaliser, checking every field: a bad one is a one-line error naming ``source``."""
        if not isinstance(data, dict):
            raise PreforchError(f"{source}: expected a JSON object, got {type(data).__name__}")
        require_format(data, source, NORMALIZER_FORMAT, "normalizer format_version")
        require_keys(data, ("objectives", "method", "clip", "stats"), source, "normalizer key(s)")
        objectives, method, clip, stats = data["objectives"], data["method"], data["clip"], data["stats"]
        if not isinstance(objectives, list) or not all(isinstance(o, str) and o for o in objectives):
            raise PreforchError(f"{source}: 'objectives' must be a list of names, got {objectives!r:.80}")
        if not isinstance(method, str) or method not in get_args(NormMethod):
            raise PreforchError(f"{source}: normalizer method {method!r:.40}, expected one of {get_args(NormMethod)}")
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))):
            raise PreforchError(f"{source}: normalizer clip {clip!r:.40}, expected a positive number or null")
        try:
            norm = cls(objectives=list(objectives), method=method, clip=None if clip is None else float(clip))
        except PreforchError as err:
            raise PreforchError(f"{source}: {err}") from None
        norm.stats = _check_stats(stats, method, len(objectives), source)
        return norm

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        return cls.from_dict(read_object(path, "normalizer file"), source=str(path))


_STATS = {"zscore": ("mean", "std"), "minmax": ("min", "max"), "rank": ("sorted",)}


def _check_stats(stats, method: str, k: int, source: str) -> dict[str, list[float]]:
    """Saved statistics: the keys ``method`` needs, each a list of finite numbers, K of them (rank: K equal
    sorted runs), spreads positive."""
    if not isinstance(stats, dict):
        raise PreforchError(f"{source}: 'stats' must be an object, got {type(stats).__name__}")
    need = _STATS[method]
    if sorted(stats) != sorted(need):
        raise PreforchError(f"{source}: method {method!r} keeps stats {list(need)}, got {sorted(stats)}")
    out = {}
    for key in need:
        values = stats[key]
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
            raise PreforchError(f"{source}: stats {key!r} must be a list of numbers, got {values!r:.80}")
        array = np.asarray(values, dtype=np.float64)
        if not np.isfinite(array).all():
            raise PreforchError(f"{source}: stats {key!r} holds a value that is not finite ({values!r:.80})")
        if key == "sorted":
            if not len(array) or len(array) % k:
                raise PreforchError(f"{source}: stats 'sorted' has {len(array)} values, expected a positive multiple "
                                    f"of {k} (one sorted run per objective)")
            if (np.diff(array.reshape(k, -1), axis=1) < 0).any():
                raise PreforchError(f"{source}: stats 'sorted' is not sorted within each objective")
        elif len(array) != k:
            raise PreforchError(f"{source}: stats {key!r} has {len(array)} values, expected {k} (one per objective)")
        out[key] = array.tolist()
    if method == "zscore" and (np.asarray(out["std"]) <= 0).any():
        raise PreforchError(f"{source}: stats 'std' values must be positive, got {out['std']}")
    if method == "minmax" and (np.asarray(out["max"]) <= np.asarray(out["min"])).any():
        raise PreforchError(f"{source}: stats 'max' must exceed 'min' for every objective")
    # A spread below what fit() ever keeps (denormal 1e-310, say) turns every score into inf: refuse it here
    # rather than answer every request with an error.
    if method in ("zscore", "minmax"):
        centre = np.asarray(out["mean"] if method == "zscore" else out["min"])
        spread = np.asarray(out["std"]) if method == "zscore" else np.asarray(out["max"]) - centre
        tiny = spread <= _FLAT * np.maximum(1.0, np.abs(centre))
        if tiny.any():
            raise PreforchError(f"{source}: stats spread {float(spread[tiny][0]):.3g} of objective "
                                f"{int(np.argmax(tiny)) + 1} is too small to divide by (fit() never keeps one below "
                                f"{_FLAT:g} × max(1, |centre|)); refit the normaliser")
    return out


def _check_scores(scores: np.ndarray, k: int, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != k:
        raise PreforchError(f"normalizer {what}: scores of shape {scores.shape}, expected [N, {k}]")
    if scores.shape[0] == 0:
        raise PreforchError(f"normalizer {what}: no scores given")
    bad = ~np.isfinite(scores)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"normalizer {what}: score at row {row}, objective {col} is {scores[row, col]}")
    return scores


def _mean_std(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-objective mean and standard deviation; scores near the float64 limit (±1e308) are scaled first, so
    the sums cannot overflow. Shape: [N, K] → [K], [K]."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = scores.mean(0), scores.std(0)
    if np.isfinite(mean).all() and np.isfinite(std).all():
        return mean, std
    scale = np.abs(scores).max(0)
    scale[scale == 0] = 1.0
    unit = scores / scale  # [N, K] in [-1, 1]
    return unit.mean(0) * scale, unit.std(0) * scale


def _standardise(scores: np.ndarray, center: np.ndarray, half_spread: np.ndarray) -> np.ndarray:
    """(scores − center) / (2·half_spread), computed by halves where the plain form overflows (scores near
    ±1e308). Halving is exact in binary floating point. Shapes: [N, K], [K], [K] → [N, K]."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        spread = 2 * half_spread
        out = (scores - center) / spread
        bad = ~np.isfinite(out) | ~np.isfinite(spread)
        if bad.any():
            out = np.where(bad, (scores / 2 - center / 2) / half_spread, out)
    return out


def _mid_rank(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of reference values below each value, counting ties as half. Shape: [N] → [N] in [0, 1]."""
    below = np.searchsorted(sorted_ref, values, side="left")
    upto = np.searchsorted(sorted_ref, values, side="right")
    return (below + upto) / (2.0 * len(sorted_ref))
