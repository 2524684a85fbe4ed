"""Where does prompt-aware weighting land among fixed weightings? Mean normalised reward per objective
for the adapter's weighting and for every fixed lattice weighting, the fixed ones' Pareto front, the
prompt-aware point's place (dominated / on the front / beyond it) and hypervolumes, pooled and per kind.

Two inputs: best-of-N candidates (each weighting picks, per prompt, the candidate maximising R), or one
response per prompt per policy (each policy is a point; the prompt-aware policy is located against the
others)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from preforch.errors import PreforchError
from preforch.evaluate.metrics import check_same_k, lattice_selections, select_best
from preforch.evaluate.pareto import check_points, dominates, hypervolume, pareto_mask, simplex_lattice

POOLED = "all"
Location = Literal["dominated", "on_front", "beyond"]


@dataclass
class FrontAnalysis:
    """One group of prompts (a kind, or ``all``).

    ``fixed_points`` [M, K]: mean normalised reward per objective under each fixed weighting (``fixed_labels``);
    ``front`` [M]: which of them are Pareto-optimal; ``aware_point`` [K]: the prompt-aware weighting's point;
    ``location``: dominated (some fixed point is at least as good everywhere and better somewhere), beyond
    (not dominated and it dominates at least one front point), or on_front (neither);
    ``reference_point``: the hypervolume reference (stated, never clipped); ``hv_fixed`` the fixed front's
    hypervolume and ``hv_with_aware`` that of the fixed points plus the prompt-aware one.
    """

    n_prompts: int
    fixed_labels: list[str]
    fixed_points: list[list[float]]
    front: list[bool]
    aware_point: list[float] | None
    uniform_point: list[float] | None
    location: Location | None
    n_dominating: int
    n_dominated_front: int
    reference_point: list[float]
    hv_fixed: float
    hv_with_aware: float | None


@dataclass
class ResponsesEvaluation:
    objectives: list[str]
    mode: Literal["best_of_n", "policies"]
    n_prompts: int
    n_candidates: int
    resolution: int | None
    groups: dict[str, FrontAnalysis] = field(default_factory=dict)
    aware_weights: np.ndarray | None = None  # [N, K], for plots
    kinds: list[str] | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("aware_weights")
        out.pop("kinds")
        return out


def auto_reference(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Component-wise minimum of ``points`` less ``margin`` of each objective's range (or of 1 if flat)."""
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return lo - margin * span  # [K]


def locate(point, fixed_points) -> tuple[Location, int, int]:
    """(location, how many fixed points dominate it, how many front points it dominates)."""
    fixed = check_points(fixed_points, "fixed points")
    front = fixed[pareto_mask(fixed)]
    n_dom = sum(dominates(f, point) for f in fixed)
    n_beats = sum(dominates(point, f) for f in front)
    if n_dom:
        return "dominated", int(n_dom), int(n_beats)
    return ("beyond" if n_beats else "on_front"), 0, int(n_beats)


def analyse_front(fixed_points, labels: list[str], aware_point=None, uniform_point=None, n_prompts: int = 0,
                  ref=None) -> FrontAnalysis:
    """Front, location and hypervolumes for one group. Shapes: fixed_points [M, K], aware/uniform [K]."""
    fixed = check_points(fixed_points, "fixed points")
    extra = [np.asarray(p, dtype=np.float64) for p in (aware_point, uniform_point) if p is not None]
    everything = check_points(np.vstack([fixed, *extra]), "evaluated points")
    r = auto_reference(everything) if ref is None else np.asarray(ref, dtype=np.float64)
    location, n_dom, n_beats = (None, 0, 0) if aware_point is None else locate(aware_point, fixed)
    return FrontAnalysis(
        n_prompts=int(n_prompts), fixed_labels=list(labels), fixed_points=fixed.tolist(),
        front=pareto_mask(fixed).tolist(),
        aware_point=None if aware_point is None else np.asarray(aware_point, dtype=np.float64).tolist(),
        uniform_point=None if uniform_point is None else np.asarray(uniform_point, dtype=np.float64).tolist(),
        location=location, n_dominating=n_dom, n_dominated_front=n_beats, reference_point=r.tolist(),
        hv_fixed=hypervolume(fixed, r),
        hv_with_aware=None if aware_point is None else hypervolume(np.vstack([fixed, aware_point]), r),
    )


def _groups(kinds: list[str] | None, n: int) -> dict[str, np.ndarray]:
    out = {POOLED: np.arange(n)}
    if kinds is not None:
        arr = np.asarray(kinds, dtype=object)
        out.update({k: np.flatnonzero(arr == k) for k in sorted(set(kinds))})
    return out


def weight_label(w) -> str:
    return "(" + ", ".join(f"{x:.2f}" for x in w) + ")"


def evaluate_best_of_n(objectives: list[str], candidate_scores, aware_weights=None, kinds: list[str] | None = None,
                       resolution: int = 10, ref=None) -> ResponsesEvaluation:
    """Best-of-N under every fixed lattice weighting and under the prompt-aware weights.

    ``candidate_scores`` are normalised s̃. Shapes: candidate_scores [N, G, K]; aware_weights [N, K].
    """
    k = len(objectives)
    s = np.asarray(candidate_scores, dtype=np.float64)
    if s.ndim != 3:
        raise PreforchError(f"candidate scores: expected shape [N, G, K], got {s.shape}")
    check_same_k({"candidate scores": s, "prompt-aware weights": aware_weights}, k)
    check_points(s.reshape(-1, k), "candidate scores")
    if aware_weights is not None and len(aware_weights) != len(s):
        raise PreforchError(f"prompt-aware weights have {len(aware_weights)} rows, candidates {len(s)} prompts")
    lattice = simplex_lattice(k, resolution)  # [M, K]
    picked = lattice_selections(s, lattice)  # [M, N, K]
    rows = np.arange(len(s))
    uni = s[rows, select_best(s, np.full(k, 1.0 / k))]  # [N, K]
    aware = None if aware_weights is None else s[rows, select_best(s, aware_weights)]  # [N, K]
    labels = [weight_label(w) for w in lattice]
    groups = {}
    for name, idx in _groups(kinds, len(s)).items():
        if len(idx):
            groups[name] = analyse_front(picked[:, idx].mean(1), labels,
                                         None if aware is None else aware[idx].mean(0), uni[idx].mean(0),
                                         len(idx), ref)
    return ResponsesEvaluation(objectives=list(objectives), mode="best_of_n", n_prompts=len(s),
                               n_candidates=s.shape[1], resolution=resolution, groups=groups,
                               aware_weights=None if aware_weights is None else np.asarray(aware_weights),
                               kinds=kinds)


def evaluate_policies(objectives: list[str], policy_scores: dict[str, np.ndarray], aware_policy: str | None,
                      kinds: list[str] | None = None, ref=None) -> ResponsesEvaluation:
    """One response per prompt per policy: every policy but ``aware_policy`` is a fixed point.

    Shapes: each policy_scores value [N, K] (normalised, same prompt order for all policies).
    """
    k = len(objectives)
    if aware_policy is not None and aware_policy not in policy_scores:
        raise PreforchError(f"prompt-aware policy {aware_policy!r} not among the policies {sorted(policy_scores)}")
    check_same_k(policy_scores, k)
    fixed_names = [p for p in policy_scores if p != aware_policy]
    if not fixed_names:
        raise PreforchError("policies: need at least one policy besides the prompt-aware one to compare with")
    n = len(next(iter(policy_scores.values())))
    for name, value in policy_scores.items():
        check_points(value, f"policy {name!r} scores", k)
        if len(value) != n:
            raise PreforchError(f"policy {name!r} has {len(value)} responses, expected {n} (one per prompt)")
    groups = {}
    for name, idx in _groups(kinds, n).items():
        if len(idx):
            fixed = np.stack([np.asarray(policy_scores[p])[idx].mean(0) for p in fixed_names])  # [P, K]
            aware = None if aware_policy is None else np.asarray(policy_scores[aware_policy])[idx].mean(0)
            groups[name] = analyse_front(fixed, fixed_names, aware, None, len(idx), ref)
    return ResponsesEvaluation(objectives=list(objectives), mode="policies", n_prompts=n, n_candidates=1,
                               resolution=None, groups=groups, kinds=kinds)
