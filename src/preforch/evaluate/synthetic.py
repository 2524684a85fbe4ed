"""A synthetic check of the theory: prompts of several kinds, each kind c with a known true weighting a_c.

Every response has K independent standard-normal scores s ~ N(0, I). For kind c the person prefers the
response with the larger a_c·s, so a_c is the best weighting for that kind and two closed forms hold:

- Pairwise accuracy of a fixed w on kind c: d = s⁺ − s⁻ is isotropic Gaussian, so
  P[sign(w·d) = sign(a_c·d)] = 1 − θ(w, a_c)/π, with θ the angle between w and a_c. Prompt-aware weights
  w(x) = a_c score 1; the gap to the best single fixed vector is 1 − max_w Σ_c π_c (1 − θ(w, a_c)/π).
- Best-of-G under w picks the candidate maximising w·s; its expected scores are m_G·w/‖w‖ with
  m_G = E[max of G standard normals], so the kind-c utility a_c·E[s] is m_G·(a_c·w)/‖w‖ (prompt-aware:
  m_G·‖a_c‖) and the gap is m_G·(Σ_c π_c‖a_c‖ − max_w (Σ_c π_c a_c)·w/‖w‖).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erf, sqrt

import numpy as np

from preforch.errors import PreforchError
from preforch.evaluate.pareto import simplex_lattice
from preforch.types import PreferenceData
from preforch.weighting import scalarize


@dataclass
class SyntheticTask:
    """``kind_weights``: kind → its true weighting a_c (K entries); ``shares``: kind → π_c (default equal)."""

    objectives: list[str]
    kind_weights: dict[str, list[float]]
    shares: dict[str, float] | None = None

    def __post_init__(self) -> None:
        k = len(self.objectives)
        for kind, a in self.kind_weights.items():
            if len(a) != k or min(a) < 0 or sum(a) <= 0:
                raise PreforchError(f"synthetic kind {kind!r}: weights {a} must be {k} non-negative numbers, sum > 0")
        if self.shares is None:
            self.shares = {c: 1.0 / len(self.kind_weights) for c in self.kind_weights}
        if set(self.shares) != set(self.kind_weights) or abs(sum(self.shares.values()) - 1) > 1e-9:
            raise PreforchError(f"synthetic shares {self.shares} must cover every kind and sum to 1")

    def weights(self) -> np.ndarray:
        """Shape: [C, K], kinds in dict order."""
        return np.asarray([self.kind_weights[c] for c in self.kind_weights], dtype=np.float64)

    def share_array(self) -> np.ndarray:
        return np.asarray([self.shares[c] for c in self.kind_weights], dtype=np.float64)  # [C]


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between rows of a [M, K] and rows of b [C, K]. Shape: [M, C]."""
    cos = (a @ b.T) / (np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :])
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _kind_counts(task: SyntheticTask, n: int) -> list[int]:
    return [int(round(task.shares[c] * n)) for c in task.kind_weights]


def make_pairs(task: SyntheticTask, n: int, seed: int = 0) -> PreferenceData:
    """About ``n`` (chosen, rejected) pairs split among kinds by share, with raw scores. Prompts are distinct."""
    rng = np.random.default_rng(seed)
    a, k = task.weights(), len(task.objectives)
    prompts, kinds, sc, sr = [], [], [], []
    for ci, (kind, count) in enumerate(zip(task.kind_weights, _kind_counts(task, n))):
        s1, s2 = rng.standard_normal((count, k)), rng.standard_normal((count, k))  # [n_c, K]
        first = scalarize(a[ci], s1) >= scalarize(a[ci], s2)  # [n_c]
        sc.append(np.where(first[:, None], s1, s2))
        sr.append(np.where(first[:, None], s2, s1))
        prompts += [f"{kind} prompt {i}" for i in range(count)]
        kinds += [kind] * count
    return PreferenceData(prompts=prompts, chosen=["y+"] * len(prompts), rejected=["y-"] * len(prompts),
                          objectives=list(task.objectives), scores_chosen=np.vstack(sc), scores_rejected=np.vstack(sr),
                          kinds=kinds, source="synthetic pairs")


def oracle_weights(task: SyntheticTask, kinds: list[str]) -> np.ndarray:
    """The true per-kind weighting for each row (what a perfect adapter predicts). Shape: [N, K]."""
    a = {c: np.asarray(w, dtype=np.float64) / sum(w) for c, w in task.kind_weights.items()}
    return np.stack([a[c] for c in kinds])


def closed_form_pairwise(task: SyntheticTask, resolution: int = 10) -> dict:
    """Closed-form pairwise accuracy: per kind for every lattice vector, the best fixed one, and the gap."""
    lattice = simplex_lattice(len(task.objectives), resolution)  # [M, K]
    acc = 1.0 - _angle(lattice, task.weights()) / np.pi  # [M, C]
    pooled = acc @ task.share_array()  # [M]
    best = int(np.argmax(pooled))
    return {"lattice": lattice, "accuracy": acc, "best_index": best, "best_fixed": float(pooled[best]),
            "prompt_aware": 1.0, "gap": float(1.0 - pooled[best]),
            "per_kind_best_fixed": dict(zip(task.kind_weights, acc[best].tolist()))}


def expected_max_normal(g: int) -> float:
    """m_G = E[max of G i.i.d. standard normals] = ∫ x·G·φ(x)·Φ(x)^(G−1) dx (numerical quadrature)."""
    x = np.linspace(-10.0, 10.0, 20001)
    phi = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))
    return float(np.trapezoid(x * g * phi * cdf ** (g - 1), x))


def make_candidates(task: SyntheticTask, n: int, g: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``n`` prompts (split by share) with ``g`` candidates each. Shapes: scores [N, G, K]; kinds [N]."""
    rng = np.random.default_rng(seed)
    counts = _kind_counts(task, n)
    kinds = [c for c, m in zip(task.kind_weights, counts) for _ in range(m)]
    return rng.standard_normal((len(kinds), g, len(task.objectives))), kinds


def closed_form_best_of_n(task: SyntheticTask, g: int, resolution: int = 10) -> dict:
    """Expected per-objective scores of best-of-G under each fixed vector (the same for every kind) and under
    prompt-aware weights (per kind and pooled), and the closed-form utility gap."""
    m_g = expected_max_normal(g)
    lattice = simplex_lattice(len(task.objectives), resolution)  # [M, K]
    a, pi = task.weights(), task.share_array()
    unit = lattice / np.linalg.norm(lattice, axis=1, keepdims=True)  # [M, K]
    a_unit = a / np.linalg.norm(a, axis=1, keepdims=True)  # [C, K]
    utility_fixed = m_g * (unit @ a.T) @ pi  # [M]
    utility_aware = m_g * float(np.linalg.norm(a, axis=1) @ pi)
    best = int(np.argmax(utility_fixed))
    return {"m_g": m_g, "fixed_points": m_g * unit, "aware_points": dict(zip(task.kind_weights, m_g * a_unit)),
            "aware_pooled": m_g * (pi @ a_unit), "utility_fixed": utility_fixed, "utility_aware": utility_aware,
            "best_index": best, "gap": float(utility_aware - utility_fixed[best])}


def utility(picked_scores: np.ndarray, task: SyntheticTask, kinds: list[str]) -> float:
    """Mean true utility a_c·s of picked responses. Shape: picked_scores [N, K]."""
    a = task.weights()
    index = {c: i for i, c in enumerate(task.kind_weights)}
    return float(np.mean(scalarize(a[[index[c] for c in kinds]], picked_scores)))  # mean of [N]
