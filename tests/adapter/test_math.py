"""Hand-worked numbers for the normaliser, targets, losses and weight arithmetic."""

import math

import numpy as np
import pytest
import torch

from preforch.adapter.targets import forward_kl, pairwise_bt, reverse_kl, target_weights
from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer
from preforch.weighting import blend_weights, check_weights, scalarize


def test_zscore_hand_worked():
    scores = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0]])
    norm = Normalizer(["a", "b"], clip=None).fit(scores)
    # a: mean 3, population std sqrt(8/3); b: mean 20, std sqrt(200)
    out = norm.transform(np.array([[3.0, 20.0], [5.0, 40.0]]))
    assert out[0] == pytest.approx([0.0, 0.0])
    assert out[1] == pytest.approx([2 / math.sqrt(8 / 3), 20 / math.sqrt(200)], rel=1e-6)


def test_zscore_clip():
    norm = Normalizer(["a", "b"], clip=1.0).fit(np.array([[0.0, 0.0], [2.0, 2.0]]))
    assert norm.transform(np.array([[100.0, -100.0]])).tolist() == [[1.0, -1.0]]


def test_minmax_hand_worked():
    norm = Normalizer(["a", "b"], method="minmax", clip=None).fit(np.array([[0.0, -2.0], [4.0, 2.0]]))
    assert norm.transform(np.array([[1.0, 0.0], [4.0, 2.0]])).tolist() == [[0.25, 0.5], [1.0, 1.0]]


def test_rank_is_empirical_cdf():
    train = np.stack([np.arange(1.0, 101.0), np.arange(1.0, 101.0) * 10], axis=1)
    norm = Normalizer(["a", "b"], method="rank", clip=None).fit(train)
    out = norm.transform(np.array([[0.0, 0.0], [50.5, 505.0], [1000.0, 5000.0]]))
    assert out[0].tolist() == [0.0, 0.0]
    assert out[1] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert out[2].tolist() == [1.0, 1.0]


def test_rank_ties_get_mid_rank():
    norm = Normalizer(["a", "b"], method="rank", clip=None).fit(np.array([[1.0, 1.0]] * 4 + [[2.0, 2.0]] * 4))
    assert norm.transform(np.array([[1.0, 2.0]]))[0] == pytest.approx([0.25, 0.75], abs=1e-2)


def test_normalizer_json_round_trip(tmp_path):
    norm = Normalizer(["x", "y", "z"], method="rank").fit(np.random.default_rng(0).normal(size=(50, 3)))
    norm.save(tmp_path / "n.json")
    back = Normalizer.load(tmp_path / "n.json")
    probe = np.random.default_rng(1).normal(size=(7, 3))
    assert np.array_equal(back.transform(probe), norm.transform(probe))


def test_normalizer_refuses_other_objectives_and_bad_scores():
    norm = Normalizer(["a", "b"]).fit(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(PreforchError, match=r"fitted on objectives \['a', 'b'\]"):
        norm.transform(np.zeros((1, 2)), objectives=["b", "a"])
    with pytest.raises(PreforchError, match="row 1, objective 0 is nan"):
        norm.transform(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(PreforchError, match="at least 2 objectives"):
        Normalizer(["only"])


def test_targets_softmax_with_temperature():
    w = target_weights(np.array([[0.0, math.log(3.0)]]), tau=1.0)
    assert w[0] == pytest.approx([0.25, 0.75])
    w2 = target_weights(np.array([[0.0, math.log(3.0)]]), tau=0.5)  # 1 : 9
    assert w2[0] == pytest.approx([0.1, 0.9])


def test_kl_losses_hand_worked():
    target = torch.tensor([[0.5, 0.5]])
    log_w = torch.log(torch.tensor([[0.25, 0.75]]))
    fwd = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    rev = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert float(forward_kl(log_w, target)) == pytest.approx(fwd, rel=1e-6)
    assert float(reverse_kl(log_w, target)) == pytest.approx(rev, rel=1e-6)
    assert float(forward_kl(torch.log(target), target)) == pytest.approx(0.0, abs=1e-7)


def test_pairwise_bt_hand_worked():
    log_w = torch.log(torch.tensor([[0.25, 0.75]]))
    delta = torch.tensor([[2.0, -1.0]])  # margin = 0.5 - 0.75 = -0.25
    expected = math.log(1 + math.exp(0.25))
    assert float(pairwise_bt(log_w, delta)) == pytest.approx(expected, rel=1e-6)
    assert float(pairwise_bt(log_w, delta, beta=2.0)) == pytest.approx(math.log(1 + math.exp(0.5)), rel=1e-6)


def test_blend_and_scalarize():
    inferred = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert blend_weights(inferred, [1, 3], lam=0.5)[0] == pytest.approx([0.5 * 0.25 + 0.1, 0.5 * 0.75 + 0.4])
    assert blend_weights(inferred, [1, 1], lam=1.0).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert blend_weights(inferred, None).tolist() == inferred.tolist()
    r = scalarize(np.array([[0.2, 0.8]]), np.array([[1.0, -1.0]]))
    assert r.tolist() == pytest.approx([-0.6])
    r3 = scalarize(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[[1, 2], [3, 4]], [[1, 2], [3, 4]]]))
    assert r3.tolist() == [[1.0, 3.0], [2.0, 4.0]]


@pytest.mark.parametrize("bad,match", [([1, -1], "non-negative"), ([0, 0], "positive"), ([1, 2, 3], "expected 2"),
                                       ([np.nan, 1], "finite")])
def test_check_weights_rejects(bad, match):
    with pytest.raises(PreforchError, match=match):
        check_weights(bad, 2)
