"""Pure weight arithmetic shared by training, alignment, evaluation and serving.

R(x, y) = Σ_k w_k(x)·s̃_k(x, y); the user may give weights, or blend λ·w_user + (1−λ)·w(x).
"""

from __future__ import annotations

import numpy as np

from preforch.errors import PreforchError


def check_weights(weights, k: int, what: str = "weights") -> np.ndarray:
    """Validate user weights: length K, finite, non-negative, positive sum; returned normalised to sum 1.

    Shape: [K] or [N, K] → same shape.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[-1:] != (k,) or w.ndim not in (1, 2):
        raise PreforchError(f"{what}: expected {k} weights (one per objective), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise PreforchError(f"{what}: weights must be finite, got {w.tolist()}")
    if (w < 0).any():
        raise PreforchError(f"{what}: weights must be non-negative, got {w.tolist()}")
    total = w.sum(-1, keepdims=True)
    if (total <= 0).any():
        raise PreforchError(f"{what}: weights must sum to a positive number, got {w.tolist()}")
    return w / total


def blend_weights(inferred: np.ndarray, user: np.ndarray | None, lam: float = 1.0) -> np.ndarray:
    """λ·w_user + (1−λ)·w(x). ``lam`` = 1 uses the user's weights alone, 0 the adapter's alone.

    Shapes: inferred [N, K]; user [K] or [N, K] → [N, K].
    """
    inferred = np.asarray(inferred, dtype=np.float64)
    if user is None:
        return inferred
    if not 0.0 <= lam <= 1.0:
        raise PreforchError(f"blend factor must be in [0, 1], got {lam}")
    u = check_weights(user, inferred.shape[-1], "user weights")
    return lam * np.broadcast_to(u, inferred.shape) + (1.0 - lam) * inferred  # [N, K]


def scalarize(weights: np.ndarray, normalized_scores: np.ndarray) -> np.ndarray:
    """R = Σ_k w_k·s̃_k. Shapes: weights [N, K] (or [K]), scores [N, K] (or [N, G, K] with weights [N, K])."""
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(normalized_scores, dtype=np.float64)
    if s.ndim == 3 and w.ndim == 2:
        return np.einsum("nk,ngk->ng", w, s)  # [N, G]
    return (np.broadcast_to(w, s.shape) * s).sum(-1)  # [N]
