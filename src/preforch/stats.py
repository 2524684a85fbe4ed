"""Uncertainty by resampling whole prompts: bootstrap intervals of a mean, paired differences, and AUC.

Rows that share a prompt are not independent (HH has several pairs per prompt; a conversation may be read in
several views), so every interval here resamples *groups* (prompts) with replacement, never rows.
Shapes: N rows, G groups, B bootstrap resamples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LEVEL = 0.95


@dataclass
class Estimate:
    """A mean with its 95% bootstrap interval over prompts and the counts behind it."""

    mean: float
    lo: float
    hi: float
    n: int  # rows
    n_prompts: int

    def to_dict(self) -> dict:
        return asdict(self)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


@dataclass
class Difference:
    """mean(a − b) over paired rows, its 95% paired-bootstrap interval and a two-sided bootstrap p-value."""

    mean: float
    lo: float
    hi: float
    p_value: float
    n: int
    n_prompts: int

    def to_dict(self) -> dict:
        return asdict(self)

    def __format__(self, spec: str) -> str:
        spec = spec or "+.3f"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


def _groups(groups, n: int) -> tuple[np.ndarray, int]:
    """Group index per row [N] and the number of groups."""
    g = np.arange(n) if groups is None else np.unique(np.asarray(groups, dtype=object).astype(str),
                                                       return_inverse=True)[1]
    return g, int(g.max()) + 1 if n else 0


def _resampled_means(values: np.ndarray, g: np.ndarray, n_groups: int, n: int, seed: int) -> np.ndarray:
    """Means of ``values`` [N] (or [N, C]) over ``n`` resamples of whole groups. Shape: [B] (or [B, C])."""
    v = values.reshape(len(values), -1)  # [N, C]
    sums = np.stack([np.bincount(g, weights=v[:, c], minlength=n_groups) for c in range(v.shape[1])], 1)  # [G, C]
    counts = np.bincount(g, minlength=n_groups).astype(np.float64)  # [G]
    picks = np.random.default_rng(seed).integers(0, n_groups, size=(n, n_groups))  # [B, G]
    means = sums[picks].sum(1) / counts[picks].sum(1)[:, None]  # [B, C]
    return means[:, 0] if values.ndim == 1 else means


def bootstrap_interval(values, groups=None, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` [N], resampling ``groups`` [N] (None: rows)."""
    v = np.asarray(values, dtype=np.float64)
    if n <= 0 or len(v) == 0:
        return float("nan"), float("nan")
    g, n_groups = _groups(groups, len(v))
    lo, hi = np.percentile(_resampled_means(v, g, n_groups, n, seed), [2.5, 97.5])
    return float(lo), float(hi)


def estimate(values, groups=None, n: int = 1000, seed: int = 0) -> Estimate:
    """The mean of ``values`` [N] with its bootstrap interval by ``groups``."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_interval(v, groups, n, seed)
    return Estimate(float(v.mean()) if len(v) else float("nan"), lo, hi, int(len(v)), _groups(groups, len(v))[1])


def paired_difference(a, b, groups=None, n: int = 1000, seed: int = 0) -> Difference:
    """mean(a − b) of paired per-row outcomes [N], with a paired bootstrap interval by ``groups``.

    The p-value is two-sided: twice the smaller share of resampled differences on either side of 0 (capped at 1);
    with ``n`` resamples it cannot go below 1/n.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    g, n_groups = _groups(groups, len(d))
    if n <= 0 or len(d) == 0:
        return Difference(float(d.mean()) if len(d) else float("nan"), float("nan"), float("nan"), float("nan"),
                          int(len(d)), n_groups)
    means = _resampled_means(d, g, n_groups, n, seed)  # [B]
    lo, hi = np.percentile(means, [2.5, 97.5])
    p = min(1.0, 2.0 * min((means <= 0).mean(), (means >= 0).mean()))
    return Difference(float(d.mean()), float(lo), float(hi), float(max(p, 1.0 / n)), int(len(d)), n_groups)


def auc(scores, labels) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties ½ (Mann–Whitney)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = _midranks(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def auc_estimate(scores, labels, groups=None, n: int = 1000, seed: int = 0) -> Estimate:
    """AUC with a 95% bootstrap interval resampling whole groups (prompts)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    g, n_groups = _groups(groups, len(s))
    members = [np.flatnonzero(g == j) for j in range(n_groups)]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(max(n, 0)):
        rows = np.concatenate([members[j] for j in rng.integers(0, n_groups, size=n_groups)])
        values.append(auc(s[rows], y[rows]))
    finite = np.asarray([v for v in values if np.isfinite(v)])
    lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (float("nan"), float("nan"))
    return Estimate(auc(s, y), float(lo), float(hi), int(len(s)), n_groups)


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]
