import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.evaluate.adapter_eval import evaluate_adapter_arrays
from preforch.evaluate.metrics import (
    calibration,
    kl_divergence,
    lattice_pair_outcomes,
    lattice_selections,
    pair_outcomes,
    select_best,
)
from preforch.evaluate.pareto import simplex_lattice


def test_pair_outcomes_ties_half():
    chosen = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rejected = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert pair_outcomes([1, 0], chosen, rejected).tolist() == [1.0, 0.0, 0.5]
    assert pair_outcomes([0.5, 0.5], chosen, rejected).tolist() == [0.5, 0.5, 0.5]
    lat = simplex_lattice(2, 2)
    np.testing.assert_allclose(lattice_pair_outcomes(lat, chosen, rejected),
                               [[1, 0, 0.5], [0.5, 0.5, 0.5], [0, 1, 0.5]])


def test_kl_and_calibration():
    t = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert kl_divergence(t, t).tolist() == pytest.approx([0.0, 0.0])
    assert kl_divergence([[1.0, 0.0]], [[0.5, 0.5]])[0] == pytest.approx(np.log(2))
    # Confident and right, confident and wrong: ECE = mean |acc − conf| in one bin.
    cal = calibration(np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[0.95, 0.05], [0.95, 0.05]]), n_bins=5)
    assert len(cal.bins) == 1 and cal.bins[0]["count"] == 2
    assert cal.ece == pytest.approx(abs(0.5 - 0.95))


def test_best_of_n_selection():
    s = np.array([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]]])  # [1, 3, 2]
    assert select_best(s, [1.0, 0.0]).tolist() == [0]
    assert select_best(s, [0.5, 0.5]).tolist() == [2]
    picked = lattice_selections(s, simplex_lattice(2, 2))
    np.testing.assert_allclose(picked[:, 0], [[1, 0], [0.6, 0.6], [0, 1]])


def test_adapter_arrays_best_fixed_chosen_on_train():
    # Kind a prefers objective 0, kind b objective 1; a perfect adapter wins every pair.
    c = np.array([[1.0, 0.0], [0.0, 1.0]] * 4)
    r = np.array([[0.0, 1.0], [1.0, 0.0]] * 4)
    kinds = ["a", "b"] * 4
    w = np.array([[1.0, 0.0], [0.0, 1.0]] * 4)
    ev = evaluate_adapter_arrays(["x", "y"], w, w, select_chosen=c, select_rejected=r, test_chosen=c,
                                 test_rejected=r, select_kinds=kinds, test_kinds=kinds, resolution=2, bootstrap=200)
    pooled = ev.pairwise["all"]
    assert pooled.adapter.mean == 1.0 and (pooled.adapter.lo, pooled.adapter.hi) == (1.0, 1.0)
    assert pooled.uniform.mean == 0.5
    assert pooled.best_fixed.mean == 0.5  # every single vector gets one kind right at most
    assert pooled.adapter_minus_best_fixed.mean == 0.5 and pooled.adapter_minus_best_fixed.lo > 0
    assert pooled.adapter_minus_best_fixed.p_value <= 0.01 and pooled.n_pairs == 8
    row_a = ev.pairwise["a"]
    assert row_a.best_fixed_for_kind.mean == 1.0 and row_a.best_fixed_for_kind_weights == [1.0, 0.0]
    assert row_a.adapter_minus_best_fixed_for_kind.mean == 0.0
    assert ev.kl.mean == pytest.approx(0.0, abs=1e-9) and ev.top1.mean == 1.0
    assert set(ev.per_kind) == {"a", "b"}


def test_best_fixed_is_chosen_on_selection_rows_not_on_test_rows():
    # Selection rows say objective 0 wins; the test rows say objective 1 wins. The best fixed vector must follow
    # the selection rows (and lose on test), while the oracle, chosen on test, wins.
    sel_c, sel_r = np.array([[1.0, 0.0]] * 6), np.array([[0.0, 1.0]] * 6)
    test_c, test_r = np.array([[0.0, 1.0]] * 4), np.array([[1.0, 0.0]] * 4)
    w = np.full((4, 2), 0.5)
    ev = evaluate_adapter_arrays(["x", "y"], w, w, select_chosen=sel_c, select_rejected=sel_r, test_chosen=test_c,
                                 test_rejected=test_r, resolution=2, bootstrap=100)
    assert ev.best_fixed_weights == [1.0, 0.0]
    assert ev.pairwise["all"].best_fixed.mean == 0.0 and ev.pairwise["all"].oracle_fixed.mean == 1.0


def test_without_selection_rows_each_half_of_the_test_prompts_gets_the_vector_chosen_on_the_other():
    from preforch.evaluate.adapter_eval import crossfit_folds

    groups = np.array([f"prompt {i}" for i in range(40)])
    folds = crossfit_folds(groups)
    assert 0 < folds.sum() < len(folds) and (crossfit_folds(groups) == folds).all()  # both folds, deterministic
    # Fold 0 prompts prefer objective x, fold 1 prompts prefer y: a vector chosen on the other half is wrong on
    # every row, while the oracle (chosen on the test rows themselves) is right on more than half of them.
    x_wins, y_wins = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    chosen = np.where(folds[:, None] == 0, x_wins, y_wins)
    rejected = chosen[:, ::-1]
    w = np.full((40, 2), 0.5)
    ev = evaluate_adapter_arrays(["x", "y"], w, w, test_chosen=chosen, test_rejected=rejected, test_groups=groups,
                                 resolution=1, bootstrap=100)
    assert ev.n_select == 0
    assert ev.pairwise["all"].best_fixed.mean == 0.0 and ev.pairwise["all"].oracle_fixed.mean > 0.5
    with pytest.raises(PreforchError, match="both chosen and rejected"):
        evaluate_adapter_arrays(["x", "y"], w, w, select_chosen=chosen, test_chosen=chosen, test_rejected=rejected)


def test_adapter_arrays_k_mismatch_and_nan():
    w = np.full((2, 2), 0.5)
    with pytest.raises(PreforchError, match="test_chosen: has 3 objectives"):
        evaluate_adapter_arrays(["x", "y"], w, w, select_chosen=np.zeros((2, 2)), select_rejected=np.zeros((2, 2)),
                                test_chosen=np.zeros((2, 3)), test_rejected=np.zeros((2, 3)))
    with pytest.raises(PreforchError, match="adapter weights: point 1, objective 0 is nan"):
        evaluate_adapter_arrays(["x", "y"], np.array([[0.5, 0.5], [np.nan, 0.5]]), w)
