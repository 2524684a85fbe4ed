"""Does each prompt's weight go where it should? Routing metrics on labelled prompts (issue 21).

Pairwise accuracy mixes routing with reward-model quality; these numbers read the weights alone. Every prompt
carries 0/1 labels over some of the adapter's objectives (``expected: harmless`` is the one-hot case). For each
labelled objective k: the AUC of w_k(x) for prompts labelled k against the rest (Mann–Whitney, ties ½), the mean
weights of the prompts labelled k, the share of labelled prompts whose largest weight is a labelled objective,
and a calibration table of w_k against the observed rate of label k. The same summary is given per group (a
``group`` column) and for named pools of groups. Every mean, share and AUC has a 95% bootstrap interval that
resamples prompts (:mod:`preforch.stats`). Pure numpy: arrays in, a dataclass out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from preforch.errors import PreforchError
from preforch.stats import Estimate, auc_estimate, estimate

POOLED = "all"


@dataclass
class RoutingSummary:
    """Routing numbers on one set of prompts (all of them, one group, one pool, or those of one label).

    ``top1`` is over the prompts with at least one label (None when none has); ``auc`` holds the labelled
    objectives with both labelled and unlabelled prompts in the set.
    """

    n: int
    n_prompts: int
    n_labelled: dict[str, int]
    mean_weights: dict[str, Estimate]
    top1: Estimate | None
    auc: dict[str, Estimate]


@dataclass
class CalibrationBin:
    """Prompts whose w_k falls in [lo, hi): how many, their mean w_k and the share of them labelled k."""

    lo: float
    hi: float
    n: int
    mean_weight: float
    observed_rate: float


@dataclass
class RoutingEvaluation:
    """Everything ``preforch evaluate routing`` reports; the arrays (for plots) stay out of ``to_dict``."""

    objectives: list[str]
    labelled: list[str]
    overall: RoutingSummary
    by_label: dict[str, RoutingSummary]
    calibration: dict[str, list[CalibrationBin]]
    calibration_error: dict[str, float]
    mean_weight_not_labelled: dict[str, Estimate]
    groups: dict[str, RoutingSummary] = field(default_factory=dict)
    pools: dict[str, RoutingSummary] = field(default_factory=dict)
    pool_members: dict[str, list[str]] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    weights: np.ndarray | None = None  # [N, K]
    labels: np.ndarray | None = None  # [N, L]
    group_names: list[str] | None = None  # [N]

    def to_dict(self) -> dict:
        out = asdict(self)
        for name in ("weights", "labels", "group_names"):
            out.pop(name)
        return out


def labels_from_expected(expected: list[str], labelled: list[str]) -> np.ndarray:
    """One-hot labels from the objective each prompt should weigh most. Shape: [N, L], L = len(labelled)."""
    where = {name: j for j, name in enumerate(labelled)}
    out = np.zeros((len(expected), len(labelled)), dtype=bool)
    for i, name in enumerate(expected):
        out[i, where[name]] = True
    return out


def summarise(objectives: list[str], labelled: list[str], weights: np.ndarray, labels: np.ndarray,
              prompts: np.ndarray, bootstrap: int = 1000, seed: int = 0) -> RoutingSummary:
    """Routing numbers of the rows given. Shapes: weights [N, K], labels [N, L] bool, prompts [N] ids."""
    cols = [objectives.index(name) for name in labelled]
    has_label = labels.any(1)  # [N]
    top = weights.argmax(1)  # [N]
    hit = np.array([bool(labels[i, cols.index(t)]) if t in cols else False for i, t in enumerate(top)])  # [N]
    aucs = {}
    for j, name in enumerate(labelled):
        y = labels[:, j]
        if y.any() and not y.all():
            aucs[name] = auc_estimate(weights[:, cols[j]], y, prompts, bootstrap, seed)
    return RoutingSummary(
        n=len(weights), n_prompts=len(set(prompts.tolist())),
        n_labelled={name: int(labels[:, j].sum()) for j, name in enumerate(labelled)},
        mean_weights={name: estimate(weights[:, k], prompts, bootstrap, seed) for k, name in enumerate(objectives)},
        top1=estimate(hit[has_label], prompts[has_label], bootstrap, seed) if has_label.any() else None,
        auc=aucs,
    )


def calibration_bins(weight: np.ndarray, label: np.ndarray, n_bins: int) -> tuple[list[CalibrationBin], float]:
    """Equal-width bins of w_k over [0, 1] (the last one closed); empty bins are left out. Returns the bins and
    the calibration error Σ_b (n_b/N)·|mean w_b − rate_b|. Shapes: weight, label [N]."""
    which = np.minimum((weight * n_bins).astype(np.int64), n_bins - 1)  # [N]
    bins, error = [], 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            mean_w, rate = float(weight[sel].mean()), float(label[sel].mean())
            bins.append(CalibrationBin(b / n_bins, (b + 1) / n_bins, int(sel.sum()), mean_w, rate))
            error += sel.sum() / len(weight) * abs(mean_w - rate)
    return bins, float(error)


def evaluate_routing(objectives: list[str], weights, labels, labelled: list[str], *, prompts=None,
                     groups: list[str] | None = None, pools: dict[str, list[str]] | None = None,
                     n_bins: int = 5, bootstrap: int = 1000, seed: int = 0,
                     protocol: dict | None = None) -> RoutingEvaluation:
    """Routing metrics from arrays.

    Shapes: weights [N, K] (rows on the simplex, columns in ``objectives`` order); labels [N, L] 0/1, columns in
    ``labelled`` order (a subset of ``objectives``); prompts [N] prompt ids for the bootstrap (None = each row
    its own prompt); groups [N] group names or None; pools: name → the groups pooled under that name.
    """
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(labels)
    if w.ndim != 2 or w.shape[1] != len(objectives) or len(w) == 0:
        raise PreforchError(f"routing: weights must be [N, {len(objectives)}] with N >= 1, got shape {w.shape}")
    unknown = [name for name in labelled if name not in objectives]
    if unknown or not labelled:
        raise PreforchError(f"routing: labelled objectives {labelled} must be a non-empty subset of {objectives}")
    if y.shape != (len(w), len(labelled)) or not np.isin(y, (0, 1)).all():
        raise PreforchError(f"routing: labels must be 0/1 of shape [{len(w)}, {len(labelled)}], got {y.shape}")
    y = y.astype(bool)
    ids = np.arange(len(w)).astype(str) if prompts is None else np.asarray(prompts, dtype=object).astype(str)
    if len(ids) != len(w) or (groups is not None and len(groups) != len(w)):
        raise PreforchError(f"routing: prompts and groups must have one entry per row ({len(w)})")

    def part(sel: np.ndarray) -> RoutingSummary:
        return summarise(objectives, labelled, w[sel], y[sel], ids[sel], bootstrap, seed)

    everything = np.ones(len(w), dtype=bool)
    names = None if groups is None else np.asarray(groups, dtype=object).astype(str)
    group_rows = {} if names is None else {g: names == g for g in dict.fromkeys(names.tolist())}
    pool_rows = {}
    for pool, members in (pools or {}).items():
        missing = [g for g in members if g not in group_rows]
        if missing:
            raise PreforchError(f"routing: pool {pool!r} names group(s) {missing} that no evaluated row has; groups: "
                                f"{list(group_rows)}")
        pool_rows[pool] = np.isin(names, list(members)) if members else everything
    calibration, errors, rest = {}, {}, {}
    for j, name in enumerate(labelled):
        k = objectives.index(name)
        calibration[name], errors[name] = calibration_bins(w[:, k], y[:, j], n_bins)
        if not y[:, j].all():
            rest[name] = estimate(w[~y[:, j], k], ids[~y[:, j]], bootstrap, seed)
    return RoutingEvaluation(
        objectives=list(objectives), labelled=list(labelled), overall=part(everything),
        by_label={name: part(y[:, j]) for j, name in enumerate(labelled) if y[:, j].any()},
        calibration=calibration, calibration_error=errors, mean_weight_not_labelled=rest,
        groups={g: part(sel) for g, sel in group_rows.items()},
        pools={p: part(sel) for p, sel in pool_rows.items()},
        pool_members={p: list(m) for p, m in (pools or {}).items()}, protocol=protocol or {},
        weights=w, labels=y, group_names=None if names is None else names.tolist(),
    )


def _ci(e: Estimate | None) -> str:
    return "—" if e is None or not np.isfinite(e.mean) else f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def _summary_rows(title: str, rows: dict[str, RoutingSummary], ev: RoutingEvaluation, auc: bool = True) -> list[str]:
    shown = ev.labelled if auc else []
    head = (f"| {title} | n | labelled | " + " | ".join(f"w.{o}" for o in ev.objectives) + " | top-1 share |"
            + "".join(f" AUC w.{o} |" for o in shown))
    lines = [head, "|---|---|---|" + "---|" * (len(ev.objectives) + 1 + len(shown))]
    for name, s in rows.items():
        counts = ", ".join(f"{o} {c}" for o, c in s.n_labelled.items() if c) or "none"
        lines.append(f"| {name} | {s.n} | {counts} | " + " | ".join(_ci(s.mean_weights[o]) for o in ev.objectives)
                     + f" | {_ci(s.top1)} |" + "".join(f" {_ci(s.auc.get(o))} |" for o in shown))
    return lines


def routing_text(ev: RoutingEvaluation, title: str = "Routing evaluation") -> str:
    """The report for people: Markdown tables, one line per set of prompts."""
    p = ev.protocol
    o = ev.overall
    lines = [f"# {title}", "",
             f"Weights from {p.get('weights_from', '?')}; prompts from {p.get('data', '?')}"
             + (f", rows with {p['split_column']} = {p['split']!r}" if p.get("split") else "")
             + f": {o.n} rows, {o.n_prompts} distinct prompts. Labels from {p.get('labels_from', '?')}. "
             f"Intervals: 95% bootstrap over prompts ({p.get('bootstrap', '?')} resamples). AUC: the chance that a "
             "prompt labelled k gets a larger w_k than one that is not (ties ½). Top-1 share: labelled prompts "
             "whose largest weight is a labelled objective.", "",
             "## Each objective's weight, labelled vs not (all rows)", "",
             "| objective | labelled | not | AUC | mean w, labelled | mean w, not | calibration error |",
             "|---|---|---|---|---|---|---|"]
    for name in ev.labelled:
        label = ev.by_label.get(name)
        lines.append(f"| {name} | {o.n_labelled[name]} | {o.n - o.n_labelled[name]} | {_ci(o.auc.get(name))} | "
                     f"{_ci(label.mean_weights[name]) if label else '—'} | "
                     f"{_ci(ev.mean_weight_not_labelled.get(name))} | {ev.calibration_error[name]:.3f} |")
    lines += ["", f"Top-1 share, all labelled rows: {_ci(o.top1)}.", "",
              "## Mean weights per label", "", *_summary_rows("label", ev.by_label, ev, auc=False), ""]
    if ev.groups:
        lines += ["## Per group", "", *_summary_rows("group", ev.groups, ev), ""]
    if ev.pools:
        lines += ["## Pools of groups", "", *_summary_rows("pool", ev.pools, ev), "",
                  *[f"- {name}: {', '.join(m) if m else 'every group'}" for name, m in ev.pool_members.items()], ""]
    lines += ["## Calibration: mean weight vs observed rate of the label", "",
              "| objective | w bin | n | mean w | observed rate |", "|---|---|---|---|---|"]
    for name, bins in ev.calibration.items():
        lines += [f"| {name} | [{b.lo:.2f}, {b.hi:.2f}{']' if b.hi >= 1 else ')'} | {b.n} | {b.mean_weight:.3f} | "
                  f"{b.observed_rate:.3f} |" for b in bins]
    return "\n".join(lines) + "\n"
