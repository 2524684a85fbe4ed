"""PNG plots (matplotlib, Agg backend, imported only inside these functions: the `plot` extra)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

from preforch.errors import PreforchError
from preforch.evaluate.pareto import pareto_mask


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PreforchError("plots need matplotlib: pip install 'preforch[plot]' (or set plots: false)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Write through a temporary name so a half-written PNG never appears under the final name."""
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _front_axes(ax, fixed: np.ndarray, aware, uniform, i: int, j: int, objectives: list[str]) -> None:
    pts = fixed[:, [i, j]]  # [M, 2]
    front = pareto_mask(pts)
    ax.scatter(pts[~front, 0], pts[~front, 1], s=14, c="0.65", label="fixed weights")
    order = np.argsort(pts[front, 0])
    ax.plot(pts[front, 0][order], pts[front, 1][order], "-o", c="tab:blue", ms=4, lw=1.2, label="Pareto front (fixed)")
    if uniform is not None:
        ax.scatter([uniform[i]], [uniform[j]], marker="s", s=50, c="tab:green", label="uniform", zorder=4)
    if aware is not None:
        ax.scatter([aware[i]], [aware[j]], marker="*", s=220, c="tab:red", edgecolors="k", label="prompt-aware",
                   zorder=5)
    ax.set_xlabel(f"mean normalised {objectives[i]}")
    ax.set_ylabel(f"mean normalised {objectives[j]}")
    ax.grid(alpha=0.3)


def plot_front(objectives: list[str], fixed_points, aware_point, uniform_point, path: str | Path,
               title: str = "") -> Path:
    """2-D: one Pareto plot; K >= 3: one panel per pair of objectives (fronts of the projections).

    Shapes: fixed_points [M, K]; aware_point, uniform_point [K] or None.
    """
    plt = _pyplot()
    fixed = np.asarray(fixed_points, dtype=np.float64)
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.2), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        _front_axes(ax, fixed, aware_point, uniform_point, i, j, objectives)
    axes[0][0].legend(fontsize=8, loc="lower left", markerscale=0.6, framealpha=0.85)
    if title:
        fig.suptitle(title)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def plot_weights_by_kind(objectives: list[str], weights, kinds: list[str] | None, path: str | Path,
                         title: str = "prompt-aware weights by prompt kind") -> Path:
    """Box plots of w_k(x) per objective, one box per prompt kind. Shape: weights [N, K]."""
    plt = _pyplot()
    w = np.asarray(weights, dtype=np.float64)
    kinds = kinds if kinds is not None else ["all"] * len(w)
    names = sorted(set(kinds))
    arr = np.asarray(kinds, dtype=object)
    fig, ax = plt.subplots(figsize=(min(14.0, max(5.0, 1.2 * len(objectives) * len(names))), 4.0))
    width = 0.8 / len(names)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n_i, name in enumerate(names):
        data = [w[arr == name, k] for k in range(len(objectives))]
        pos = np.arange(len(objectives)) + (n_i - (len(names) - 1) / 2) * width
        box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False,
                         medianprops={"color": "k"})
        for patch in box["boxes"]:
            patch.set_facecolor(colors[n_i % len(colors)])
            patch.set_alpha(0.7)
        ax.plot([], [], "s", c=colors[n_i % len(colors)], label=f"{name} (n={int((arr == name).sum())})")
    ax.set_xticks(np.arange(len(objectives)))
    ax.set_xticklabels(objectives)
    ax.set_ylabel("weight w_k(x)")
    ax.set_ylim(0, 1)
    ax.axhline(1.0 / len(objectives), ls="--", c="0.5", lw=1, label="uniform")
    ax.legend(fontsize=8)
    ax.set_title(title)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def plot_reliability(bins: list[dict], path: str | Path, k: int) -> Path:
    """Reliability diagram: mean top-1 agreement against mean max weight per bin."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    conf = [b["confidence"] for b in bins]
    acc = [b["accuracy"] for b in bins]
    ax.plot([1.0 / k, 1.0], [1.0 / k, 1.0], "--", c="0.5", label="perfectly calibrated")
    ax.plot(conf, acc, "-o", c="tab:blue", label="adapter")
    for c, a, b in zip(conf, acc, bins):
        ax.annotate(str(b["count"]), (c, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("max weight max_k w_k(x)")
    ax.set_ylabel("top-1 agreement with w*")
    ax.set_xlim(1.0 / k - 0.02, 1.0)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def plot_routing(objectives: list[str], labelled: list[str], weights, labels, rows: list[str] | None,
                 path: str | Path, title: str = "") -> Path:
    """One panel per labelled objective k: each prompt's w_k as a dot on one line per group (per label when there
    are no groups), filled when the prompt is labelled k and hollow when not, with each line's mean as a bar.
    Shapes: weights [N, K]; labels [N, L] bool, columns in ``labelled`` order; rows [N] group names or None."""
    plt = _pyplot()
    w, y = np.asarray(weights, dtype=np.float64), np.asarray(labels, dtype=bool)
    if rows is None:
        rows = [", ".join(name for name, on in zip(labelled, r) if on) or "no label" for r in y]
    arr = np.asarray(rows, dtype=object)
    names = list(dict.fromkeys(rows))
    jitter = np.random.default_rng(0).uniform(-0.22, 0.22, len(w))  # [N]: spread the dots of one line
    fig, axes = plt.subplots(1, len(labelled), figsize=(4.2 * len(labelled) + 1.5, 0.42 * len(names) + 1.4),
                             squeeze=False, sharey=True)
    for ax, (j, name) in zip(axes[0], enumerate(labelled)):
        k = objectives.index(name)
        for r, group in enumerate(names):
            sel = arr == group
            pos, neg = sel & y[:, j], sel & ~y[:, j]
            ax.scatter(w[pos, k], r + jitter[pos], s=16, c="tab:red", alpha=0.75)
            ax.scatter(w[neg, k], r + jitter[neg], s=16, facecolors="none", edgecolors="tab:blue", alpha=0.75)
            ax.plot([w[sel, k].mean()] * 2, [r - 0.35, r + 0.35], c="k", lw=2)
        ax.scatter([], [], s=16, c="tab:red", label=f"labelled {name}")  # legend entries, drawn once per panel
        ax.scatter([], [], s=16, facecolors="none", edgecolors="tab:blue", label=f"not labelled {name}")
        ax.plot([], [], c="k", lw=2, label="mean")
        ax.axvline(1.0 / len(objectives), ls="--", c="0.6", lw=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel(f"w_{name}(x)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    axes[0][0].set_yticks(range(len(names)))
    axes[0][0].set_yticklabels([f"{g} ({int((arr == g).sum())})" for g in names], fontsize=8)
    axes[0][0].set_ylim(len(names) - 0.5, -0.5)
    if title:
        fig.suptitle(title, y=1.0 + 0.35 / (0.42 * len(names) + 1.4))
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)
