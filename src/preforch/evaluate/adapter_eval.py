"""How good is a trained adapter on held-out prompts? KL to w*, top-1 agreement, calibration, and the
pairwise accuracy of R = Σ_k w_k·s̃_k with the adapter's weights against uniform and fixed vectors on a simplex
lattice, each with n and a 95% bootstrap interval by prompt, and the paired difference to the best fixed vector.

The protocol: test rows are rows nothing was fitted or chosen on. By default they are the adapter's
own recorded test split; any test row whose prompt the adapter trained or early-stopped on (``split.json``) or a
reward model was trained on (``training_prompts.json``) is excluded and counted. Fixed vectors are chosen on
*selection* rows: rows that are not test rows and that no reward model was trained on. Where none are left (the
built-in heads trained on every non-test prompt of the embedded data), fixed vectors are chosen by 2-fold
cross-fitting over the test prompts: each test row is scored with the vector chosen on the other half.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from preforch.adapter import target_weights
from preforch.data.split import prompt_fingerprint, split_by_prompt
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
from preforch.evaluate.risk_coverage import FallbackEvaluation, evaluate_fallback
from preforch.stats import Difference, Estimate, estimate, paired_difference
from preforch.types import PreferenceData

POOLED = "all"


@dataclass
class PairwiseRow:
    """Pairwise accuracy on the test pairs of one group (a prompt kind, or ``all``), each with its interval.

    ``best_fixed``: the lattice vector best on the pooled selection rows; ``best_fixed_for_kind``: the vector
    best on this kind's selection rows (a baseline that knows the kind label); ``oracle_fixed``: the best lattice
    vector on the test rows themselves (optimistic: an upper bound for any single fixed vector, not a result).
    """

    n_pairs: int
    n_prompts: int
    adapter: Estimate
    uniform: Estimate
    best_fixed: Estimate
    best_fixed_for_kind: Estimate
    best_fixed_for_kind_weights: list[float]
    oracle_fixed: Estimate
    oracle_fixed_weights: list[float]
    adapter_minus_best_fixed: Difference
    adapter_minus_best_fixed_for_kind: Difference
    adapter_minus_uniform: Difference


@dataclass
class AdapterEvaluation:
    """Everything ``preforch evaluate adapter`` reports; arrays used for plots are kept out of ``to_dict``."""

    objectives: list[str]
    n_select: int
    n_test: int
    resolution: int
    n_lattice: int
    kl: Estimate
    top1: Estimate
    calibration: Calibration
    mean_weights: dict[str, float]
    mean_target_weights: dict[str, float]
    per_kind: dict[str, dict[str, float]]
    best_fixed_weights: list[float]
    pairwise: dict[str, PairwiseRow] = field(default_factory=dict)
    lattice_test_accuracy: list[float] = field(default_factory=list)
    protocol: dict = field(default_factory=dict)
    fallback: FallbackEvaluation = field(default_factory=FallbackEvaluation)  # risk–coverage, λ calibration
    test_weights: np.ndarray | None = None  # [N_test, K], for plots
    test_kinds: list[str] | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for name in ("test_weights", "test_kinds"):
            out.pop(name)
        return out


#: Fewer clean selection rows than this: the fixed vectors are cross-fitted on the test prompts instead.
MIN_SELECTION_ROWS = 30

def _group_index(kinds: list[str] | None, n: int) -> dict[str, np.ndarray]:
    groups = {POOLED: np.arange(n)}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            groups[kind] = np.flatnonzero(np.asarray(kinds, dtype=object) == kind)
    return groups


def crossfit_folds(test_groups: np.ndarray) -> np.ndarray:
    """Fold 0 or 1 for each test row, by a hash of its prompt (rows of one prompt share a fold). Shape: [N]."""
    return np.array([hashlib.sha256(str(g).encode()).digest()[0] & 1 for g in test_groups], dtype=np.int64)


def _choose(lat_se: np.ndarray, se_idx: np.ndarray, lat_te: np.ndarray, te_idx: np.ndarray,
            folds: np.ndarray | None, fallback: np.ndarray) -> np.ndarray:
    """Lattice index used for each row of ``te_idx``: the best on the selection rows ``se_idx`` or, when
    cross-fitting (``folds`` given), the best on the other fold's rows of ``te_idx``. Ties go to the first
    vector in lattice order. Shape: [len(te_idx)]."""
    if folds is None:
        if len(se_idx) == 0:
            return fallback
        return np.full(len(te_idx), int(np.argmax(lat_se[:, se_idx].mean(1))))
    out = fallback.copy()
    for f in (0, 1):
        other = te_idx[folds[te_idx] != f]
        if len(other):
            out[folds[te_idx] == f] = int(np.argmax(lat_te[:, other].mean(1)))
    return out


def pairwise_table(lattice: np.ndarray, select: tuple[np.ndarray, np.ndarray, list[str] | None] | None,
                   test: tuple[np.ndarray, np.ndarray, list[str] | None], test_weights: np.ndarray,
                   test_groups: np.ndarray, bootstrap: int = 1000, seed: int = 0
                   ) -> tuple[dict[str, PairwiseRow], np.ndarray, np.ndarray]:
    """Pairwise accuracy per group on the test rows; fixed vectors are chosen on the selection rows, or by
    2-fold cross-fitting over the test prompts when ``select`` is None.

    ``select``/``test``: (normalised chosen [N, K], normalised rejected [N, K], kinds or None); ``test_groups``
    [N_test]: the prompt of each test row (the bootstrap resamples prompts; cross-fitting folds by prompt).
    Returns the rows, the best pooled fixed vector [K] (cross-fitting: the one best on all test rows, reported
    only) and the lattice's test accuracy [M].
    """
    c_te, r_te, kinds_te = test
    k = lattice.shape[1]
    lat_te = lattice_pair_outcomes(lattice, c_te, r_te)  # [M, N_test]
    folds = None
    if select is None:
        lat_se, groups_se, folds = lat_te[:, :0], {}, crossfit_folds(test_groups)
    else:
        c_se, r_se, kinds_se = select
        lat_se = lattice_pair_outcomes(lattice, c_se, r_se)  # [M, N_select]
        groups_se = _group_index(kinds_se, len(c_se))
    ada = pair_outcomes(test_weights, c_te, r_te)  # [N_test]
    uni = pair_outcomes(np.full(k, 1.0 / k), c_te, r_te)  # [N_test]
    everything = np.arange(len(c_te))
    pooled = _choose(lat_se, np.arange(lat_se.shape[1]), lat_te, everything, folds,
                     np.zeros(len(c_te), dtype=np.int64))  # [N_test] lattice index per test row
    rows = {}
    for name, idx in _group_index(kinds_te, len(c_te)).items():
        if len(idx) == 0:
            continue
        own = _choose(lat_se, groups_se.get(name, np.arange(0)), lat_te, idx, folds, pooled[idx])  # [n]
        oracle = int(np.argmax(lat_te[:, idx].mean(1)))
        g = test_groups[idx]
        best_out, own_out = lat_te[pooled[idx], idx], lat_te[own, idx]

        def est(outcomes: np.ndarray) -> Estimate:
            return estimate(outcomes, g, bootstrap, seed)

        def diff(other: np.ndarray) -> Difference:
            return paired_difference(ada[idx], other, g, bootstrap, seed)

        rows[name] = PairwiseRow(
            n_pairs=len(idx), n_prompts=len(set(g)), adapter=est(ada[idx]), uniform=est(uni[idx]),
            best_fixed=est(best_out), best_fixed_for_kind=est(own_out),
            best_fixed_for_kind_weights=lattice[np.bincount(own).argmax()].tolist(),
            oracle_fixed=est(lat_te[oracle, idx]), oracle_fixed_weights=lattice[oracle].tolist(),
            adapter_minus_best_fixed=diff(best_out), adapter_minus_best_fixed_for_kind=diff(own_out),
            adapter_minus_uniform=diff(uni[idx]),
        )
    best = int(np.argmax(lat_te.mean(1))) if folds is not None else int(pooled[0]) if len(pooled) else 0
    return rows, lattice[best], lat_te.mean(1)


def evaluate_adapter_arrays(objectives: list[str], test_weights, test_targets, *, select_chosen=None,
                            select_rejected=None, test_chosen=None, test_rejected=None,
                            select_kinds: list[str] | None = None, test_kinds: list[str] | None = None,
                            test_groups=None, resolution: int = 10, n_bins: int = 10, bootstrap: int = 1000,
                            seed: int = 0, protocol: dict | None = None) -> AdapterEvaluation:
    """The adapter metrics from arrays (no model). Scores are normalised s̃.

    Shapes: test_weights, test_targets, test_chosen, test_rejected [N_test, K]; select_chosen, select_rejected
    [N_select, K] (the rows fixed vectors are chosen on); test_groups [N_test] (prompt ids for the bootstrap;
    None = each row its own prompt). Pairwise accuracy needs all four score arrays; without them only
    KL/top-1/calibration.
    """
    k = len(objectives)
    w = check_points(test_weights, "adapter weights", k)  # [N, K]
    t = check_points(test_targets, "target weights", k)  # [N, K]
    if len(w) != len(t) or len(w) == 0:
        raise PreforchError(f"adapter weights ({len(w)} rows) and targets ({len(t)} rows) must match and be non-empty")
    check_same_k({"select_chosen": select_chosen, "select_rejected": select_rejected, "test_chosen": test_chosen,
                  "test_rejected": test_rejected}, k)
    groups = np.arange(len(w)) if test_groups is None else np.asarray(test_groups, dtype=object).astype(str)
    kl, top1 = kl_divergence(t, w), top1_agreement(t, w)  # [N], [N]
    per_kind = {}
    for name, idx in _group_index(test_kinds, len(w)).items():
        if name != POOLED and len(idx):
            per_kind[name] = {"n": len(idx), "kl": float(kl[idx].mean()), "top1": float(top1[idx].mean()),
                              **{f"w.{o}": float(w[idx, j].mean()) for j, o in enumerate(objectives)},
                              **{f"w*.{o}": float(t[idx, j].mean()) for j, o in enumerate(objectives)}}
    lattice = simplex_lattice(k, resolution)  # [M, K]
    pairwise, best, lattice_acc = {}, [], []
    if (select_chosen is None) != (select_rejected is None):
        raise PreforchError("selection rows need both chosen and rejected scores")
    if test_chosen is not None and test_rejected is not None:
        c_te = check_points(test_chosen, "test chosen scores", k)
        r_te = check_points(test_rejected, "test rejected scores", k)
        if len(c_te) != len(w):
            raise PreforchError(f"test scores have {len(c_te)} rows, adapter weights {len(w)}")
        select = None  # no selection rows: 2-fold cross-fitting over the test prompts
        if select_chosen is not None and len(select_chosen):
            select = (check_points(select_chosen, "selection chosen scores", k),
                      check_points(select_rejected, "selection rejected scores", k), select_kinds)
        pairwise, best_vec, acc = pairwise_table(lattice, select, (c_te, r_te, test_kinds), w, groups, bootstrap,
                                                 seed)
        best, lattice_acc = best_vec.tolist(), acc.tolist()
    return AdapterEvaluation(
        objectives=list(objectives), n_select=0 if select_chosen is None else len(select_chosen), n_test=len(w),
        resolution=resolution, n_lattice=len(lattice), kl=estimate(kl, groups, bootstrap, seed),
        top1=estimate(top1, groups, bootstrap, seed), calibration=calibration(t, w, n_bins),
        mean_weights=dict(zip(objectives, w.mean(0).tolist())),
        mean_target_weights=dict(zip(objectives, t.mean(0).tolist())), per_kind=per_kind,
        best_fixed_weights=best, pairwise=pairwise, lattice_test_accuracy=lattice_acc, protocol=protocol or {},
        test_weights=w, test_kinds=test_kinds,
    )


def predict_once(adapter, prompts: list, batch_size: int = 64) -> np.ndarray:
    """The adapter's weights for each row, computing each distinct prompt once. Shape: [N, K]."""
    unique = list(dict.fromkeys(prompts))
    where = {p: i for i, p in enumerate(unique)}
    w = np.asarray(adapter.predict_weights(unique, batch_size=batch_size), dtype=np.float64)  # [U, K]
    return w[[where[p] for p in prompts]]  # [N, K]


def uncertainty_once(adapter, prompts: list, batch_size: int = 64) -> np.ndarray | None:
    """The adapter's uncertainty score u(x) for each row (confidence = 1 − λ(u)), each distinct prompt once;
    None without a saved uncertainty. Shape: [N]."""
    if getattr(adapter, "uncertainty", None) is None:
        return None
    unique = list(dict.fromkeys(prompts))
    where = {p: i for i, p in enumerate(unique)}
    u = adapter.uncertainty.score(adapter.mlp, adapter.embed(unique, batch_size=batch_size)).numpy()  # [U]
    return u.astype(np.float64)[[where[p] for p in prompts]]  # [N]


def _drop(part: PreferenceData, rows: np.ndarray, banned: set[str]) -> tuple[np.ndarray, int]:
    """``rows`` without those whose prompt fingerprint is in ``banned``, and how many were dropped."""
    keep = np.array([prompt_fingerprint(part.prompts[i]) not in banned for i in rows], dtype=bool)
    return rows[keep], int((~keep).sum())


def evaluate_adapter(adapter, data: PreferenceData, test_data: PreferenceData | None = None, *,
                     adapter_prompts: set[str] | None = None, reward_model_prompts: set[str] | None = None,
                     tau: float | None = None, resolution: int = 10, n_bins: int = 10, batch_size: int = 64,
                     bootstrap: int = 1000, seed: int = 0) -> AdapterEvaluation:
    """Evaluate ``adapter`` on rows nothing was fitted or chosen on (see the module docstring).

    Test rows: ``test_data``, or else the adapter's recorded test split of ``data`` (its test_fraction and seed).
    Selection rows (fixed vectors are chosen there): ``data`` minus the test rows' prompts. ``adapter_prompts``:
    fingerprints of the prompts the adapter trained or early-stopped on (its split.json; None = unknown, noted
    in the protocol); ``reward_model_prompts``: fingerprints of the prompts the scoring reward models were
    trained on. Both are excluded from the test rows, the latter also from the selection rows.
    """
    for part in (data, test_data):
        if part is None:
            continue
        if part.scores_chosen is None:
            raise PreforchError(f"{part.source}: no scores for the chosen responses (score.<objective> columns)")
        adapter.check_objectives(part.objectives, part.source)
    cfg = adapter.config
    if test_data is None:
        if cfg.test_fraction <= 0:
            raise PreforchError("the adapter was trained without a test split (test_fraction 0): give test_data, "
                                "rows it never saw")
        split = split_by_prompt(data.prompts, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        test, test_rows = data, split.test
        select_rows = np.sort(np.concatenate([split.train, split.val]))
        source = f"the adapter's test split of {data.source} (test_fraction {cfg.test_fraction}, seed {cfg.seed})"
    else:
        test, test_rows, select_rows = test_data, np.arange(len(test_data)), np.arange(len(data))
        source = f"{test_data.source} (test_data)"
    excluded = {}
    test_rows, excluded["test_rows_the_adapter_trained_or_validated_on"] = _drop(test, test_rows,
                                                                                 adapter_prompts or set())
    test_rows, excluded["test_rows_a_reward_model_trained_on"] = _drop(test, test_rows, reward_model_prompts or set())
    test_prints = {prompt_fingerprint(test.prompts[i]) for i in test_rows}
    select_rows, excluded["selection_rows_a_reward_model_trained_on"] = _drop(data, select_rows,
                                                                              reward_model_prompts or set())
    select_rows, excluded["selection_rows_sharing_a_test_prompt"] = _drop(data, select_rows, test_prints)
    if len(test_rows) == 0:
        raise PreforchError(f"no test rows left in {source} after excluding rows the adapter or a reward model was "
                            f"trained on ({excluded}); give test_data the models never saw")
    if len(select_rows) >= MIN_SELECTION_ROWS:
        selection = f"{data.source} minus the test prompts and reward-model training prompts ({len(select_rows)} rows)"
    else:  # a vector chosen on a handful of rows is noise, not a baseline
        selection = (f"{len(select_rows)} left (fewer than {MIN_SELECTION_ROWS}; a reward model trained on the others): "
                     "fixed vectors chosen by 2-fold cross-fitting over the test prompts, each test row scored with "
                     "the vector chosen on the other half")
        select_rows = select_rows[:0]
    protocol = {"test_rows": source, "selection_rows": selection, "excluded": excluded, "bootstrap": bootstrap,
                "adapter_prompts_known": adapter_prompts is not None,
                "reward_model_prompts_known": reward_model_prompts is not None}
    te, se = test.subset(test_rows), data.subset(select_rows)
    norm = adapter.normalizer

    def scores(part: PreferenceData, which: str):
        raw = getattr(part, which)
        return None if raw is None else norm.transform(raw, part.objectives).astype(np.float64)

    c_te = scores(te, "scores_chosen")
    targets = target_weights(c_te, tau if tau is not None else cfg.tau)  # [N_test, K]
    weights = predict_once(adapter, te.prompts, batch_size)  # [N_test, K]
    has_pairs = te.scores_rejected is not None and (len(se) == 0 or se.scores_rejected is not None)
    select = has_pairs and len(se) > 0  # else the fixed vectors are cross-fitted on the test rows
    ev = evaluate_adapter_arrays(
        adapter.objectives, weights, targets,
        select_chosen=scores(se, "scores_chosen") if select else None,
        select_rejected=scores(se, "scores_rejected") if select else None,
        test_chosen=c_te if has_pairs else None, test_rejected=scores(te, "scores_rejected") if has_pairs else None,
        select_kinds=se.kinds, test_kinds=te.kinds, test_groups=[p.key() for p in te.prompts],
        resolution=resolution, n_bins=n_bins, bootstrap=bootstrap, seed=seed, protocol=protocol,
    )
    u = uncertainty_once(adapter, te.prompts, batch_size) if has_pairs else None  # [N_test]
    if u is not None:
        confidence = 1.0 - adapter.uncertainty.fallback_share(torch.as_tensor(u)).numpy()  # [N_test]
        ev.fallback = evaluate_fallback(weights, confidence, adapter.default_weights, c_te,
                                        scores(te, "scores_rejected"), [p.key() for p in te.prompts], bootstrap, seed,
                                        familiarity=-u)
    return ev
