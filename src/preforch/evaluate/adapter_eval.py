"""How good is a trained adapter on held-out prompts? KL to w*, top-1 agreement, calibration, and the
pairwise accuracy of R = Σ_k w_k·s̃_k with the adapter's weights against uniform and every fixed vector
on a simplex lattice (the best fixed vector chosen on the training split, reported on the test split)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from preforch.errors import PreforchError
from preforch.evaluate.metrics import (
    Calibration,
    calibration,
    check_same_k,
    kl_divergence,
    lattice_pair_outcomes,
    pair_outcomes,
    top1_agreement,
)
from preforch.evaluate.pareto import check_points, simplex_lattice
from preforch.types import PreferenceData

POOLED = "all"


@dataclass
class PairwiseRow:
    """Pairwise accuracy on the test pairs of one group (a prompt kind, or ``all``).

    ``best_fixed``: the lattice vector best on the pooled training split; ``best_fixed_for_kind``: the vector
    best on this kind's training rows (a kind-aware baseline that knows the label); ``oracle_fixed``: the best
    lattice vector on the test rows themselves (optimistic, an upper bound for any single fixed vector).
    """

    n_pairs: int
    adapter: float
    uniform: float
    best_fixed: float
    best_fixed_for_kind: float
    best_fixed_for_kind_weights: list[float]
    oracle_fixed: float
    oracle_fixed_weights: list[float]


@dataclass
class AdapterEvaluation:
    """Everything ``preforch evaluate adapter`` reports; arrays used for plots are kept out of ``to_dict``."""

    objectives: list[str]
    n_train: int
    n_test: int
    resolution: int
    n_lattice: int
    kl: float
    top1: float
    calibration: Calibration
    mean_weights: dict[str, float]
    mean_target_weights: dict[str, float]
    per_kind: dict[str, dict[str, float]]
    best_fixed_weights: list[float]
    pairwise: dict[str, PairwiseRow] = field(default_factory=dict)
    lattice_test_accuracy: list[float] = field(default_factory=list)
    test_weights: np.ndarray | None = None  # [N_test, K], for plots
    test_kinds: list[str] | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for name in ("test_weights", "test_kinds"):
            out.pop(name)
        return out


def _group_index(kinds: list[str] | None, n: int) -> dict[str, np.ndarray]:
    groups = {POOLED: np.arange(n)}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            groups[kind] = np.flatnonzero(np.asarray(kinds, dtype=object) == kind)
    return groups


def pairwise_table(lattice: np.ndarray, train: tuple[np.ndarray, np.ndarray, list[str] | None],
                   test: tuple[np.ndarray, np.ndarray, list[str] | None], test_weights: np.ndarray
                   ) -> tuple[dict[str, PairwiseRow], np.ndarray, np.ndarray]:
    """Pairwise accuracy per group on the test split; fixed vectors are chosen on the train split.

    ``train``/``test``: (normalised chosen [N, K], normalised rejected [N, K], kinds or None).
    Returns the rows, the best pooled fixed vector [K] and the lattice's test accuracy [M].
    """
    (c_tr, r_tr, kinds_tr), (c_te, r_te, kinds_te) = train, test
    k = lattice.shape[1]
    lat_tr = lattice_pair_outcomes(lattice, c_tr, r_tr)  # [M, N_train]
    lat_te = lattice_pair_outcomes(lattice, c_te, r_te)  # [M, N_test]
    ada = pair_outcomes(test_weights, c_te, r_te)  # [N_test]
    uni = pair_outcomes(np.full(k, 1.0 / k), c_te, r_te)  # [N_test]
    # Ties between lattice vectors go to the first in lattice order (deterministic).
    best = int(np.argmax(lat_tr.mean(1)))
    groups_tr, rows = _group_index(kinds_tr, len(c_tr)), {}
    for name, idx in _group_index(kinds_te, len(c_te)).items():
        if len(idx) == 0:
            continue
        tr_idx = groups_tr.get(name, np.arange(0))
        own = int(np.argmax(lat_tr[:, tr_idx].mean(1))) if len(tr_idx) else best
        test_acc = lat_te[:, idx].mean(1)  # [M]
        oracle = int(np.argmax(test_acc))
        rows[name] = PairwiseRow(
            n_pairs=int(len(idx)), adapter=float(ada[idx].mean()), uniform=float(uni[idx].mean()),
            best_fixed=float(test_acc[best]), best_fixed_for_kind=float(test_acc[own]),
            best_fixed_for_kind_weights=lattice[own].tolist(), oracle_fixed=float(test_acc[oracle]),
            oracle_fixed_weights=lattice[oracle].tolist(),
        )
    return rows, lattice[best], lat_te.mean(1)


def evaluate_adapter_arrays(objectives: list[str], test_weights, test_targets, *, train_chosen=None,
                            train_rejected=None, test_chosen=None, test_rejected=None,
                            train_kinds: list[str] | None = None, test_kinds: list[str] | None = None,
                            resolution: int = 10, n_bins: int = 10, n_train: int | None = None) -> AdapterEvaluation:
    """The adapter metrics from arrays (no model). Scores are normalised s̃.

    Shapes: test_weights, test_targets, test_chosen, test_rejected [N_test, K]; train_chosen, train_rejected
    [N_train, K]. Pairwise accuracy needs all four score arrays; without them only KL/top-1/calibration.
    """
    k = len(objectives)
    w = check_points(test_weights, "adapter weights", k)  # [N, K]
    t = check_points(test_targets, "target weights", k)  # [N, K]
    if len(w) != len(t) or len(w) == 0:
        raise PreforchError(f"adapter weights ({len(w)} rows) and targets ({len(t)} rows) must match and be non-empty")
    check_same_k({"train_chosen": train_chosen, "train_rejected": train_rejected, "test_chosen": test_chosen,
                  "test_rejected": test_rejected}, k)
    kl, top1 = kl_divergence(t, w), top1_agreement(t, w)  # [N], [N]
    per_kind = {}
    for name, idx in _group_index(test_kinds, len(w)).items():
        if name != POOLED and len(idx):
            per_kind[name] = {"n": int(len(idx)), "kl": float(kl[idx].mean()), "top1": float(top1[idx].mean()),
                              **{f"w.{o}": float(w[idx, j].mean()) for j, o in enumerate(objectives)},
                              **{f"w*.{o}": float(t[idx, j].mean()) for j, o in enumerate(objectives)}}
    lattice = simplex_lattice(k, resolution)  # [M, K]
    pairwise, best, lattice_acc = {}, [], []
    arrays = (train_chosen, train_rejected, test_chosen, test_rejected)
    if all(a is not None for a in arrays):
        c_tr, r_tr = check_points(train_chosen, "train chosen scores", k), check_points(train_rejected,
                                                                                         "train rejected scores", k)
        c_te, r_te = check_points(test_chosen, "test chosen scores", k), check_points(test_rejected,
                                                                                      "test rejected scores", k)
        if len(c_te) != len(w):
            raise PreforchError(f"test scores have {len(c_te)} rows, adapter weights {len(w)}")
        pairwise, best_vec, acc = pairwise_table(lattice, (c_tr, r_tr, train_kinds), (c_te, r_te, test_kinds), w)
        best, lattice_acc = best_vec.tolist(), acc.tolist()
    return AdapterEvaluation(
        objectives=list(objectives), n_train=n_train if n_train is not None else (0 if train_chosen is None else len(train_chosen)), n_test=len(w),
        resolution=resolution, n_lattice=len(lattice), kl=float(kl.mean()), top1=float(top1.mean()),
        calibration=calibration(t, w, n_bins), mean_weights=dict(zip(objectives, w.mean(0).tolist())),
        mean_target_weights=dict(zip(objectives, t.mean(0).tolist())), per_kind=per_kind,
        best_fixed_weights=best, pairwise=pairwise, lattice_test_accuracy=lattice_acc, test_weights=w,
        test_kinds=test_kinds,
    )


def predict_once(adapter, prompts: list, batch_size: int = 64) -> np.ndarray:
    """The adapter's weights for each row, computing each distinct prompt once. Shape: [N, K]."""
    unique = list(dict.fromkeys(prompts))
    where = {p: i for i, p in enumerate(unique)}
    w = np.asarray(adapter.predict_weights(unique, batch_size=batch_size), dtype=np.float64)  # [U, K]
    return w[[where[p] for p in prompts]]  # [N, K]


def evaluate_adapter(adapter, data: PreferenceData, test_data: PreferenceData | None = None,
                     val_fraction: float | None = None, seed: int | None = None, tau: float | None = None,
                     resolution: int = 10, n_bins: int = 10, batch_size: int = 64) -> AdapterEvaluation:
    """Evaluate ``adapter`` on held-out prompts.

    With ``test_data`` the split is (data, test_data); otherwise ``data`` is split by prompt with the adapter's
    own ``val_fraction`` and ``seed`` (unless given), which reproduces the adapter's validation split when
    ``data`` is the set it was trained on. Scores are normalised with the adapter's saved normaliser and the
    targets are w* = softmax(s̃(x, y⁺)/τ) (τ from the adapter's config unless given).
    """
    from preforch.adapter import target_weights
    from preforch.data.split import split_by_prompt

    for part in (data, test_data):
        if part is None:
            continue
        if part.scores_chosen is None:
            raise PreforchError(f"{part.source}: no scores for the chosen responses (score.<objective> columns)")
        adapter.check_objectives(part.objectives, part.source)
    if test_data is None:
        cfg = adapter.config
        split = split_by_prompt(data.prompts, val_fraction if val_fraction is not None else cfg.val_fraction,
                                cfg.test_fraction, seed if seed is not None else cfg.seed)
        tr_idx, te_idx = split.train, split.test if len(split.test) else split.val
        train, test = data.subset(tr_idx), data.subset(te_idx)
    else:
        train, test = data, test_data
    norm = adapter.normalizer

    def scores(part: PreferenceData, which: str):
        raw = getattr(part, which)
        return None if raw is None else norm.transform(raw, part.objectives).astype(np.float64)

    c_te = scores(test, "scores_chosen")
    targets = target_weights(c_te, tau if tau is not None else adapter.config.tau)  # [N_test, K]
    weights = predict_once(adapter, test.prompts, batch_size)  # [N_test, K]
    has_pairs = train.scores_rejected is not None and test.scores_rejected is not None
    return evaluate_adapter_arrays(
        adapter.objectives, weights, targets,
        train_chosen=scores(train, "scores_chosen") if has_pairs else None,
        train_rejected=scores(train, "scores_rejected") if has_pairs else None,
        test_chosen=c_te if has_pairs else None, test_rejected=scores(test, "scores_rejected") if has_pairs else None,
        train_kinds=train.kinds, test_kinds=test.kinds, resolution=resolution, n_bins=n_bins, n_train=len(train),
    )
