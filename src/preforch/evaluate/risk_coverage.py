"""Is the adapter's confidence worth anything on held-out pairs? (issue 22)

- **Risk–coverage**: pairwise accuracy of R = Σ w_k(x)·s̃_k on the most confident x% of test rows, for x from 10%
  to 100%, ranked by the uncertainty score u(x) (confidence 1 − λ(u) is 1 on most familiar prompts, so it cannot
  rank them). If the score means something, accuracy falls as less familiar rows are added.
- **Calibration of the fallback**: test rows grouped by the fallback share λ(x) the adapter gives them (0, up to
  ½, above ½): in each group the accuracy of the adapter's w(x), of the default weights and of the fallback's
  mix. The fallback is well calibrated when the default is no worse than the adapter where λ is large and the
  adapter is better where λ is 0.

Pure functions over arrays; each accuracy has its 95% bootstrap interval by prompt.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from preforch.evaluate.metrics import pair_outcomes
from preforch.stats import Estimate, estimate
from preforch.weighting import apply_fallback

COVERAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: λ groups: (label, lower bound exclusive (None: exactly 0), upper bound inclusive).
LAMBDA_BINS = (("λ = 0", None, 0.0), ("0 < λ ≤ ½", 0.0, 0.5), ("λ > ½", 0.5, 1.0))


@dataclass
class FallbackEvaluation:
    """Risk–coverage rows and the fallback's calibration by λ group; empty without a confidence."""

    default_weights: list[float] = field(default_factory=list)
    risk_coverage: list[dict] = field(default_factory=list)  # coverage, n, accuracy (Estimate)
    by_lambda: list[dict] = field(default_factory=list)  # group, n, adapter, default, fallback (Estimates)
    overall: dict = field(default_factory=dict)  # adapter, fallback (Estimates), mean λ

    def to_dict(self) -> dict:
        return asdict(self)


def risk_coverage(confidence, outcomes, groups=None, coverages=COVERAGES, bootstrap: int = 1000,
                  seed: int = 0) -> list[dict]:
    """Accuracy of the most confident share of rows, for each share in ``coverages`` (ties keep row order).

    Shapes: confidence, outcomes [N]; groups [N] (prompt ids for the bootstrap; None = one prompt per row).
    """
    conf, out = np.asarray(confidence, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    g = np.arange(len(out)) if groups is None else np.asarray(groups, dtype=object)
    order = np.argsort(-conf, kind="stable")  # [N], most confident first
    rows = []
    for c in coverages:
        top = order[: max(1, math.ceil(c * len(out)))]
        rows.append({"coverage": float(c), "n": int(len(top)), "threshold": float(conf[top].min()),
                     "accuracy": estimate(out[top], g[top], bootstrap, seed)})
    return rows


def evaluate_fallback(weights, confidence, default, chosen, rejected, groups=None, bootstrap: int = 1000,
                      seed: int = 0, familiarity=None) -> FallbackEvaluation:
    """Risk–coverage and the fallback's calibration on test pairs (normalised scores).

    Shapes: weights [N, K] (the adapter's w(x)); confidence [N] (1 − λ); default [K]; chosen, rejected [N, K];
    familiarity [N]: what ranks rows for risk–coverage, higher = more familiar (default: the confidence).
    """
    w = np.asarray(weights, dtype=np.float64)
    mixed, lam = apply_fallback(w, confidence, np.asarray(default, dtype=np.float64))  # [N, K], [N]
    g = np.arange(len(w)) if groups is None else np.asarray(groups, dtype=object)
    ada, dft, fb = (pair_outcomes(x, chosen, rejected) for x in (w, default, mixed))  # [N] each
    by_lambda = []
    for label, lo, hi in LAMBDA_BINS:
        sel = lam == 0 if lo is None else (lam > lo) & (lam <= hi)
        if sel.any():
            by_lambda.append({"group": label, "n": int(sel.sum()), "mean_lambda": float(lam[sel].mean()),
                              **{name: estimate(x[sel], g[sel], bootstrap, seed)
                                 for name, x in (("adapter", ada), ("default", dft), ("fallback", fb))}})
    overall = {"mean_lambda": float(lam.mean()), "adapter": estimate(ada, g, bootstrap, seed),
               "fallback": estimate(fb, g, bootstrap, seed)}
    rank = confidence if familiarity is None else familiarity
    return FallbackEvaluation(list(map(float, default)), risk_coverage(rank, ada, g, COVERAGES, bootstrap, seed),
                              by_lambda, overall)


def fallback_markdown(ev: FallbackEvaluation) -> list[str]:
    """The report's lines for :class:`FallbackEvaluation` (none when the adapter reports no confidence)."""
    if not ev.risk_coverage:
        return ["## Confidence", "", "The adapter was saved without uncertainty: no confidence, no fallback.", ""]

    def ci(e: Estimate) -> str:
        return f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"

    lines = ["## Confidence: risk–coverage and the fallback", "",
             "Pairwise accuracy of the adapter's w(x) on the most familiar share of test rows (ranked by the "
             "uncertainty score u(x); the threshold is −u of the least familiar row kept):", "",
             "| coverage | rows | threshold | accuracy |", "|---|---|---|---|"]
    lines += [f"| {r['coverage']:.0%} | {r['n']} | {r['threshold']:.3f} | {ci(r['accuracy'])} |"
              for r in ev.risk_coverage]
    default = ", ".join(f"{v:.3f}" for v in ev.default_weights)
    lines += ["", f"The fallback (default: the training-mean weights [{default}]) by its share λ(x); mean λ "
              f"{ev.overall['mean_lambda']:.3f}, accuracy {ci(ev.overall['fallback'])} against the adapter's "
              f"{ci(ev.overall['adapter'])}:", "",
              "| λ group | rows | mean λ | adapter w(x) | default | fallback |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['group']} | {r['n']} | {r['mean_lambda']:.3f} | {ci(r['adapter'])} | {ci(r['default'])} | "
              f"{ci(r['fallback'])} |" for r in ev.by_lambda]
    return [*lines, ""]
