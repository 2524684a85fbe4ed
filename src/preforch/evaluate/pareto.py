"""Fixed weight vectors on a simplex lattice, dominance, Pareto fronts and exact hypervolume.

Everything here maximises: a point ``a`` dominates ``b`` when ``a >= b`` in every objective and
``a > b`` in at least one. Points are rows of an array. Shape: [M, K].
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from preforch.errors import PreforchError


def simplex_lattice(k: int, resolution: int) -> np.ndarray:
    """All weight vectors whose entries are multiples of 1/``resolution`` and sum to 1.

    There are C(resolution + k − 1, k − 1) of them, vertices included, in lexicographic order of the
    integer counts (largest first weight first). Shape: [M, K].
    """
    if k < 1 or resolution < 1:
        raise PreforchError(f"simplex lattice needs k >= 1 and resolution >= 1, got k={k}, resolution={resolution}")
    rows = []
    # Stars and bars: choose k−1 bar positions among resolution + k − 1 slots.
    for bars in itertools.combinations(range(resolution + k - 1), k - 1):
        edges = (-1, *bars, resolution + k - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(k)])
    counts = np.asarray(rows, dtype=np.int64)[::-1]  # [M, K]
    assert len(counts) == math.comb(resolution + k - 1, k - 1)
    return counts.astype(np.float64) / resolution  # [M, K]


def check_points(points, what: str = "points", k: int | None = None) -> np.ndarray:
    """Validate a [M, K] array of finite numbers; errors name the first bad row and objective."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] < 1:
        raise PreforchError(f"{what}: expected an array of shape [M, K], got {p.shape}")
    if k is not None and p.shape[1] != k:
        raise PreforchError(f"{what}: points have {p.shape[1]} objectives, expected {k}")
    bad = ~np.isfinite(p)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"{what}: point {row}, objective {col} is {p[row, col]}; expected a finite number")
    return p


def dominates(a, b) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere (maximisation)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise PreforchError(f"dominates: points of shapes {a.shape} and {b.shape} cannot be compared")
    return bool(np.all(a >= b) and np.any(a > b))


def pareto_mask(points) -> np.ndarray:
    """True for points no other point dominates (maximisation). Shape: [M, K] → [M] bool.

    Duplicates do not dominate each other, so every copy of a non-dominated point is kept; a point tied
    with another in some objectives is dropped only when the other is strictly better in one of the rest.
    """
    p = check_points(points)
    m = len(p)
    mask = np.ones(m, dtype=bool)
    chunk = max(1, 4_000_000 // max(1, m * p.shape[1]))
    for start in range(0, m, chunk):
        block = p[start : start + chunk]  # [B, K]
        geq = (p[None, :, :] >= block[:, None, :]).all(-1)  # [B, M]: p_j >= block_i everywhere
        gt = (p[None, :, :] > block[:, None, :]).any(-1)  # [B, M]
        mask[start : start + chunk] = ~(geq & gt).any(-1)
    return mask


def pareto_front(points) -> np.ndarray:
    """The non-dominated points, duplicates removed. Shape: [M, K] → [F, K]."""
    p = check_points(points)
    return np.unique(p[pareto_mask(p)], axis=0)


def check_reference(points: np.ndarray, ref) -> np.ndarray:
    """The reference point must be bounded by every point (ref <= point in each objective)."""
    r = np.asarray(ref, dtype=np.float64)
    if r.shape != (points.shape[1],):
        raise PreforchError(f"hypervolume: reference point has shape {r.shape}, expected ({points.shape[1]},)")
    if not np.isfinite(r).all():
        raise PreforchError(f"hypervolume: reference point {r.tolist()} is not finite")
    below = points < r[None, :]
    if below.any():
        row, col = np.argwhere(below)[0]
        raise PreforchError(
            f"hypervolume: reference point does not bound the data: point {row} has objective {col} = "
            f"{points[row, col]:.6g} < reference {r[col]:.6g}; choose a lower reference point (nothing is clipped)"
        )
    return r


def hypervolume(points, ref) -> float:
    """Exact volume dominated by ``points`` and bounded below by ``ref`` (maximisation).

    2-D: a sweep over the front; K >= 3: slicing along the last objective, recursing down to the 2-D
    sweep (exact for any K; the cost grows as M^(K−1), fine for K <= 4 and lattice-sized sets).
    A reference point that some point falls below raises instead of clipping. Shape: points [M, K], ref [K].
    """
    p = check_points(points, "hypervolume")
    r = check_reference(p, ref)
    if len(p) == 0:
        return 0.0
    return float(_hv(pareto_front(p) - r[None, :]))


def _hv(p: np.ndarray) -> float:
    """Hypervolume of points already shifted so the reference is the origin (all entries >= 0)."""
    k = p.shape[1]
    if len(p) == 0:
        return 0.0
    if k == 1:
        return float(p[:, 0].max())
    if k == 2:
        # Sweep y from the top down: the strip [y_next, y] is covered up to the largest x among points with
        # that y or more.
        order = np.argsort(-p[:, 1], kind="stable")
        ys, best_x = p[order, 1], np.maximum.accumulate(p[order, 0])  # [M], [M]
        y_next = np.append(ys[1:], 0.0)
        return float((best_x * (ys - y_next)).sum())
    levels = np.unique(p[:, -1])[::-1]  # descending
    total = 0.0
    for j, z in enumerate(levels):
        z_next = levels[j + 1] if j + 1 < len(levels) else 0.0
        if z - z_next <= 0:
            continue
        above = p[p[:, -1] >= z, :-1]
        total += (z - z_next) * _hv(pareto_front(above) if len(above) > 1 else above)
    return float(total)
