import numpy as np
import pytest

from preforch.evaluate.adapter_eval import evaluate_adapter_arrays
from preforch.evaluate.metrics import select_best
from preforch.evaluate.responses import evaluate_best_of_n
from preforch.evaluate.synthetic import (
    SyntheticTask,
    closed_form_best_of_n,
    closed_form_pairwise,
    expected_max_normal,
    make_candidates,
    make_pairs,
    oracle_weights,
    utility,
)

TASK3 = SyntheticTask(["helpful", "harmless", "humor"],
                      {"code": [0.8, 0.1, 0.1], "redteam": [0.1, 0.8, 0.1], "chat": [0.2, 0.2, 0.6]})


def test_closed_form_orthogonal_kinds():
    # a = e1 and e2 with equal shares: every fixed w in the quadrant scores 1 − (π/2)/(2π) = 0.75.
    cf = closed_form_pairwise(SyntheticTask(["a", "b"], {"x": [1, 0], "y": [0, 1]}))
    assert cf["best_fixed"] == pytest.approx(0.75)
    assert cf["gap"] == pytest.approx(0.25)
    assert expected_max_normal(1) == pytest.approx(0.0, abs=1e-6)
    assert expected_max_normal(2) == pytest.approx(1 / np.sqrt(np.pi), abs=1e-6)


def _pairwise(task, n_train, n_test):
    tr, te = make_pairs(task, n_train, seed=0), make_pairs(task, n_test, seed=1)
    w = oracle_weights(task, te.kinds)
    return evaluate_adapter_arrays(task.objectives, w, w, select_chosen=tr.scores_chosen,
                                   select_rejected=tr.scores_rejected, test_chosen=te.scores_chosen,
                                   test_rejected=te.scores_rejected, select_kinds=tr.kinds, test_kinds=te.kinds,
                                   bootstrap=0)


@pytest.mark.parametrize("task", [SyntheticTask(["a", "b"], {"x": [1, 0], "y": [0, 1]}), TASK3])
def test_evaluation_reproduces_pairwise_gap(task):
    cf = closed_form_pairwise(task)
    ev = _pairwise(task, 4000, 20000)
    row = ev.pairwise["all"]
    assert row.adapter.mean == pytest.approx(cf["prompt_aware"])
    assert row.adapter.mean - row.best_fixed.mean == pytest.approx(cf["gap"], abs=0.015)
    # Per kind the fixed vector's accuracy follows 1 − θ/π as well.
    best = np.asarray(ev.best_fixed_weights)
    a = task.weights()
    for ci, kind in enumerate(task.kind_weights):
        theta = np.arccos(best @ a[ci] / np.linalg.norm(best) / np.linalg.norm(a[ci]))
        assert ev.pairwise[kind].best_fixed.mean == pytest.approx(1 - theta / np.pi, abs=0.02)


def test_evaluation_reproduces_best_of_n_closed_form():
    g = 4
    cf = closed_form_best_of_n(TASK3, g)
    s, kinds = make_candidates(TASK3, 30000, g, seed=2)
    w = oracle_weights(TASK3, kinds)
    ev = evaluate_best_of_n(TASK3.objectives, s, w, kinds, resolution=10)
    pooled = ev.groups["all"]
    np.testing.assert_allclose(pooled.fixed_points, cf["fixed_points"], atol=0.03)
    np.testing.assert_allclose(pooled.aware_point, cf["aware_pooled"], atol=0.03)
    for kind in TASK3.kind_weights:
        np.testing.assert_allclose(ev.groups[kind].aware_point, cf["aware_points"][kind], atol=0.04)
    # Averaged over kinds the prompt-aware point is dominated (kinds want different objectives) ...
    assert pooled.location == "dominated"
    # ... while the true utility gap matches the closed form.
    rows = np.arange(len(s))
    best_w = simplex_lattice_best(cf)
    gap = utility(s[rows, select_best(s, w)], TASK3, kinds) - utility(s[rows, select_best(s, best_w)], TASK3, kinds)
    assert gap == pytest.approx(cf["gap"], abs=0.02)


def simplex_lattice_best(cf):
    from preforch.evaluate.pareto import simplex_lattice

    return simplex_lattice(3, 10)[cf["best_index"]]
