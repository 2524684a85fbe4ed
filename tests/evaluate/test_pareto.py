import math

import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.evaluate.pareto import dominates, hypervolume, pareto_front, pareto_mask, simplex_lattice


@pytest.mark.parametrize("k,res", [(2, 1), (2, 10), (3, 4), (3, 10), (4, 5)])
def test_lattice_size_and_sums(k, res):
    lat = simplex_lattice(k, res)
    assert lat.shape == (math.comb(res + k - 1, k - 1), k)
    np.testing.assert_allclose(lat.sum(1), 1.0)
    assert (lat >= 0).all()
    assert len(np.unique(lat, axis=0)) == len(lat)
    np.testing.assert_allclose(lat * res, np.round(lat * res))
    assert any((row == np.eye(k)[0]).all() for row in lat)  # vertices included


def test_lattice_hand_worked():
    np.testing.assert_allclose(simplex_lattice(2, 2), [[1, 0], [0.5, 0.5], [0, 1]])
    with pytest.raises(PreforchError):
        simplex_lattice(3, 0)


def test_dominates():
    assert dominates([2, 1], [1, 1])
    assert not dominates([1, 1], [1, 1])  # equal points do not dominate
    assert not dominates([2, 0], [1, 1])
    with pytest.raises(PreforchError):
        dominates([1, 2], [1, 2, 3])


def test_pareto_mask_ties_and_duplicates():
    pts = np.array([[1, 3], [2, 2], [2, 2], [3, 1], [1, 1], [2, 1], [3, 0.5], [1, 3]])
    # [1,1] dominated; [2,1] dominated by [2,2] (tie on x, worse y); [3,0.5] dominated by [3,1] (tie on x);
    # duplicates [2,2]x2 and [1,3]x2 are all kept.
    assert pareto_mask(pts).tolist() == [True, True, True, True, False, False, False, True]
    np.testing.assert_allclose(pareto_front(pts), [[1, 3], [2, 2], [3, 1]])


def test_pareto_mask_3d():
    pts = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.3, 0.3, 0.3], [0.2, 0.2, 0.2], [1, 0, 0]])
    assert pareto_mask(pts).tolist() == [True, True, True, True, False, True]


def test_hypervolume_hand_worked_2d():
    assert hypervolume([[1, 2], [2, 1]], [0, 0]) == pytest.approx(3.0)  # 2 + 2 − 1
    assert hypervolume([[1, 2], [2, 1], [1, 1], [2, 1]], [0, 0]) == pytest.approx(3.0)  # dominated + duplicate
    assert hypervolume([[3, 1], [1, 3], [2, 2]], [0, 0]) == pytest.approx(6.0)  # staircase 3 + 2 + 1
    assert hypervolume([[2, 2]], [1, 0]) == pytest.approx(2.0)
    assert hypervolume([[1, 1]], [1, 1]) == 0.0  # on the reference: bounded, zero volume


def test_hypervolume_hand_worked_3d():
    assert hypervolume([[1, 1, 1]], [0, 0, 0]) == pytest.approx(1.0)
    # Three boxes of volume 2 overlapping pairwise and jointly in the unit cube: 6 − 3 + 1.
    assert hypervolume([[2, 1, 1], [1, 2, 1], [1, 1, 2]], [0, 0, 0]) == pytest.approx(4.0)
    assert hypervolume([[2, 1, 1], [2, 1, 1], [1, 1, 1]], [0, 0, 0]) == pytest.approx(2.0)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hypervolume_matches_pymoo(k):
    HV = pytest.importorskip("pymoo.indicators.hv").HV
    rng = np.random.default_rng(k)
    for trial in range(3):
        pts = rng.random((30, k))
        pts[5] = pts[3]  # a duplicate
        pts[7, 0] = pts[8, 0]  # a tie in one objective
        ref = pts.min(0) - 0.05
        ours = hypervolume(pts, ref)
        theirs = HV(ref_point=-ref)(-pts)  # pymoo minimises
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_hypervolume_bad_input():
    with pytest.raises(PreforchError, match="point 1 has objective 0"):
        hypervolume([[1, 1], [-0.5, 2]], [0, 0])
    with pytest.raises(PreforchError, match="point 0, objective 1 is nan"):
        hypervolume([[1, np.nan]], [0, 0])
    with pytest.raises(PreforchError, match="reference point has shape"):
        hypervolume([[1, 1]], [0, 0, 0])
    with pytest.raises(PreforchError, match="nan"):
        pareto_mask([[np.nan, 1]])
