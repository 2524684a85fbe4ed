"""Reports for people (Markdown) and machines (JSON), plus the plots, written into one folder."""

from __future__ import annotations

from pathlib import Path

from preforch.atomic import write_json, write_text
from preforch.evaluate.adapter_eval import AdapterEvaluation
from preforch.evaluate.plots import plot_front, plot_reliability, plot_weights_by_kind
from preforch.evaluate.responses import ResponsesEvaluation, weight_label
from preforch.evaluate.risk_coverage import fallback_markdown

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(e) -> str:
    """An estimate as 'mean [lo, hi]'."""
    return "—" if e is None else f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def _diff(d) -> str:
    return f"{d.mean:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}], p={d.p_value:.3f}"


def adapter_markdown(ev: AdapterEvaluation, title: str = "Adapter evaluation") -> str:
    proto = ev.protocol
    excluded = {k: v for k, v in proto.get("excluded", {}).items() if v}
    lines = [f"# {title}", "",
             f"Objectives: {', '.join(ev.objectives)}. Test rows: {ev.n_test}, from {proto.get('test_rows', '?')}. "
             f"Fixed vectors chosen on: {proto.get('selection_rows', '?')}. Scores "
             f"normalised with the adapter's saved normaliser. Intervals: 95% bootstrap over prompts "
             f"({proto.get('bootstrap', '?')} resamples).", ""]
    if excluded:
        lines += ["Excluded so that no number comes from a fitted or selected row: "
                  + "; ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items()) + ".", ""]
    if not proto.get("adapter_prompts_known", True):
        lines += ["**Warning:** the adapter folder has no split.json, so the test rows could not be checked against "
                  "the prompts it was trained on.", ""]
    if not proto.get("reward_model_prompts_known", True):
        lines += ["**Warning:** the reward models' training prompts are unknown (reward_model_prompts: []); test "
                  "rows a reward model was trained on would inflate the pairwise accuracies.", ""]
    lines += ["## Weights against targets w* (test rows)", "",
              "| group | n | KL(w*‖w) | top-1 agreement | " + " | ".join(f"w.{o}" for o in ev.objectives) + " |",
              "|---|---|---|---|" + "---|" * len(ev.objectives),
              f"| all | {ev.n_test} | {_ci(ev.kl)} | {_ci(ev.top1)} | "
              + " | ".join(_f(ev.mean_weights[o]) for o in ev.objectives) + " |"]
    for kind, row in ev.per_kind.items():
        lines.append(f"| {kind} | {row['n']} | {_f(row['kl'])} | {_f(row['top1'])} | "
                     + " | ".join(_f(row[f'w.{o}']) for o in ev.objectives) + " |")
    lines += ["", f"Calibration of the largest weight as confidence in the top objective: ECE = "
              f"{_f(ev.calibration.ece)} over {len(ev.calibration.bins)} non-empty bins.", ""]
    if ev.pairwise:
        if ev.n_select:
            chosen = (f"Best fixed (chosen on the pooled selection rows): {weight_label(ev.best_fixed_weights)}; best "
                      "fixed for kind: chosen on that kind's selection rows.")
        else:
            chosen = ("Best fixed and best fixed for kind are cross-fitted: each half of the test prompts is scored "
                      "with the vector best on the other half (pooled, or of that kind; the vector shown is the one "
                      "used for most rows).")
        lines += ["## Pairwise accuracy of R = Σ w_k·s̃_k on held-out (chosen, rejected) pairs", "",
                  f"Fixed vectors: the {ev.n_lattice}-point simplex lattice at resolution 1/{ev.resolution}. "
                  f"{chosen} Ties count ½. *Oracle fixed* is chosen on "
                  "the test rows themselves: optimistic, an upper bound for one fixed vector, not a result.", "",
                  "| group | pairs (prompts) | adapter | uniform | best fixed | best fixed for kind | oracle fixed "
                  "(optimistic) | adapter − best fixed | adapter − best for kind |", "|---|---|---|---|---|---|---|---|---|"]
        for name, r in ev.pairwise.items():
            lines.append(f"| {name} | {r.n_pairs} ({r.n_prompts}) | {_ci(r.adapter)} | {_ci(r.uniform)} | "
                         f"{_ci(r.best_fixed)} | {_ci(r.best_fixed_for_kind)} "
                         f"{weight_label(r.best_fixed_for_kind_weights)} | {_f(r.oracle_fixed.mean)} "
                         f"{weight_label(r.oracle_fixed_weights)} | {_diff(r.adapter_minus_best_fixed)} | "
                         f"{_diff(r.adapter_minus_best_fixed_for_kind)} |")
        lines.append("")
        lines += fallback_markdown(ev.fallback)
    return "\n".join(lines) + "\n"


def responses_markdown(ev: ResponsesEvaluation, title: str = "Response evaluation") -> str:
    what = (f"best-of-{ev.n_candidates} over {ev.n_prompts} prompts; each fixed weighting (the simplex lattice at "
            f"resolution 1/{ev.resolution}) picks per prompt the candidate maximising R = Σ w_k·s̃_k"
            if ev.mode == "best_of_n" else f"one response per prompt per policy, {ev.n_prompts} prompts")
    lines = [f"# {title}", "", f"Objectives: {', '.join(ev.objectives)}; {what}. Points are mean normalised "
             "rewards per objective (higher is better).", "",
             "*Location* of the prompt-aware point: dominated (a fixed weighting is at least as good on every "
             "objective and better on one), on_front, or beyond (it dominates part of the fixed front). Pooled "
             "means can hide gains that come from giving each prompt kind its own trade-off, so read the per-kind "
             "rows too.", "",
             "| group | prompts | prompt-aware point | location | fixed points dominating it | front points it "
             "dominates | HV fixed | HV fixed + aware | reference point |", "|---|---|---|---|---|---|---|---|---|"]
    for name, g in ev.groups.items():
        lines.append(f"| {name} | {g.n_prompts} | {weight_label(g.aware_point) if g.aware_point else '—'} | "
                     f"{g.location or '—'} | {g.n_dominating} | {g.n_dominated_front} | {_f(g.hv_fixed, 4)} | "
                     f"{_f(g.hv_with_aware, 4)} | {weight_label(g.reference_point)} |")
    pooled = next(iter(ev.groups.values()))
    lines += ["", "## Fixed weightings on the pooled front", "",
              "| weighting | " + " | ".join(ev.objectives) + " |", "|---|" + "---|" * len(ev.objectives)]
    for label, point, on in zip(pooled.fixed_labels, pooled.fixed_points, pooled.front):
        if on:
            lines.append(f"| {label} | " + " | ".join(_f(x) for x in point) + " |")
    if pooled.uniform_point is not None:
        lines.append("| uniform | " + " | ".join(_f(x) for x in pooled.uniform_point) + " |")
    if pooled.aware_point is not None:
        lines.append("| **prompt-aware** | " + " | ".join(_f(x) for x in pooled.aware_point) + " |")
    return "\n".join(lines) + "\n"


def write_adapter_report(folder: Path, ev: AdapterEvaluation, settings: dict, plots: bool = True) -> list[str]:
    """Write report.json, report.md and the plots into ``folder`` (already staged); returns the file names."""
    write_json(folder / REPORT_JSON, {"kind": "adapter_evaluation", "settings": settings, "result": ev.to_dict()})
    write_text(folder / REPORT_MD, adapter_markdown(ev))
    files = [REPORT_JSON, REPORT_MD]
    if plots:
        plot_weights_by_kind(ev.objectives, ev.test_weights, ev.test_kinds, folder / "weights_by_kind.png")
        plot_reliability(ev.calibration.bins, folder / "reliability.png", len(ev.objectives))
        files += ["weights_by_kind.png", "reliability.png"]
    return files


def write_responses_report(folder: Path, ev: ResponsesEvaluation, settings: dict, plots: bool = True) -> list[str]:
    write_json(folder / REPORT_JSON, {"kind": "responses_evaluation", "settings": settings, "result": ev.to_dict()})
    write_text(folder / REPORT_MD, responses_markdown(ev))
    files = [REPORT_JSON, REPORT_MD]
    if plots:
        for name, g in ev.groups.items():
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
            plot_front(ev.objectives, g.fixed_points, g.aware_point, g.uniform_point, folder / f"front_{safe}.png",
                       title=f"{name}: {g.n_prompts} prompts, prompt-aware point {g.location or 'n/a'}")
            files.append(f"front_{safe}.png")
        if ev.aware_weights is not None:
            plot_weights_by_kind(ev.objectives, ev.aware_weights, ev.kinds, folder / "weights_by_kind.png")
            files.append("weights_by_kind.png")
    return files
