"""Per-prompt metrics over arrays: pairwise accuracy of a scalarised reward, KL to targets, top-1
agreement, calibration of the largest weight, and best-of-N selection. Shapes: N prompts, G candidates,
K objectives, M weight vectors."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from preforch.errors import PreforchError
from preforch.weighting import scalarize

EPS = 1e-12


def check_same_k(arrays: dict[str, np.ndarray], k: int) -> None:
    """Every named array's last axis must be K; the error names the array and both sizes."""
    for name, value in arrays.items():
        if value is not None and np.shape(value)[-1] != k:
            raise PreforchError(f"{name}: has {np.shape(value)[-1]} objectives (shape {np.shape(value)}), expected K={k}")


def pair_outcomes(weights, chosen, rejected) -> np.ndarray:
    """1 where R(chosen) > R(rejected), 0.5 on an exact tie, 0 otherwise, with R = Σ_k w_k·s̃_k.

    Ties count half so a constant reward scores 0.5, not 0 or 1. Shapes: weights [N, K] or [K];
    chosen, rejected [N, K] → [N].
    """
    margin = scalarize(weights, np.asarray(chosen, dtype=np.float64) - np.asarray(rejected, dtype=np.float64))  # [N]
    return np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0))


def lattice_pair_outcomes(lattice, chosen, rejected) -> np.ndarray:
    """:func:`pair_outcomes` for every fixed vector at once. Shapes: [M, K], [N, K], [N, K] → [M, N]."""
    delta = np.asarray(chosen, dtype=np.float64) - np.asarray(rejected, dtype=np.float64)  # [N, K]
    margin = scalarize(np.asarray(lattice, dtype=np.float64)[:, None, :], delta)  # [M, N]
    return np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0))


def kl_divergence(target, pred) -> np.ndarray:
    """KL(target ‖ pred) per row in nats. Shapes: [N, K], [N, K] → [N]."""
    t, p = np.asarray(target, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return (t * (np.log(np.maximum(t, EPS)) - np.log(np.maximum(p, EPS)))).sum(-1)


def top1_agreement(target, pred) -> np.ndarray:
    """1 where argmax target = argmax pred. Shapes: [N, K], [N, K] → [N]."""
    return (np.argmax(target, -1) == np.argmax(pred, -1)).astype(np.float64)


@dataclass
class Calibration:
    """Reliability of the adapter's largest weight as a confidence that its top objective is the target's.

    ``ece``: Σ_b (n_b/N)·|accuracy_b − confidence_b| over equal-width bins of max_k w_k on [1/K, 1];
    ``bins``: per bin lower/upper edge, count, mean confidence and top-1 accuracy (empty bins omitted).
    """

    ece: float
    bins: list[dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


def calibration(target, pred, n_bins: int = 10) -> Calibration:
    """Expected calibration error of max_k w_k(x) against top-1 agreement with w*. Shapes: [N, K], [N, K]."""
    p = np.asarray(pred, dtype=np.float64)
    k = p.shape[-1]
    conf = p.max(-1)  # [N]
    correct = top1_agreement(target, p)  # [N]
    edges = np.linspace(1.0 / k, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)  # [N]
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        if not sel.any():
            continue
        acc, mean_conf = float(correct[sel].mean()), float(conf[sel].mean())
        ece += sel.mean() * abs(acc - mean_conf)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(sel.sum()),
                     "confidence": mean_conf, "accuracy": acc})
    return Calibration(ece=float(ece), bins=bins)


def select_best(candidate_scores, weights) -> np.ndarray:
    """Per prompt, the candidate maximising R = Σ_k w_k·s̃_k (first on ties).

    Shapes: candidate_scores [N, G, K]; weights [N, K] or [K] → [N] indices into G.
    """
    s = np.asarray(candidate_scores, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (s.shape[0], s.shape[2]))
    return np.argmax(scalarize(w, s), axis=1)  # [N]


def lattice_selections(candidate_scores, lattice) -> np.ndarray:
    """For each fixed vector, pick per prompt the best candidate and average its scores over prompts.

    Shapes: candidate_scores [N, G, K], lattice [M, K] → per-prompt picked scores [M, N, K].
    """
    s = np.asarray(candidate_scores, dtype=np.float64)
    r = scalarize(np.asarray(lattice, dtype=np.float64)[:, None, None, :], s)  # [M, N, G]
    pick = np.argmax(r, axis=2)  # [M, N]
    return np.take_along_axis(s[None], pick[:, :, None, None], axis=2)[:, :, 0, :]  # [M, N, K]
