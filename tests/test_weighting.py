"""The one weighting resolver: modes, the blend default, user weights by list or name, objective checks."""

import numpy as np
import pytest

from preforch.errors import PreforchError
from preforch.weighting import (
    DEFAULT_BLEND,
    Weighting,
    check_objectives,
    check_weights,
    choose_best,
    objective_order,
    resolve_weights,
    scalarize,
    user_vector,
)

OBJ = ["harmless", "helpful"]


class FakeAdapter:
    objectives = OBJ

    def __init__(self):
        self.calls = 0

    def predict_weights(self, prompts, batch_size=64, progress=False):
        self.calls += 1
        return np.array([[0.8, 0.2] if "lock" in str(p) else [0.3, 0.7] for p in prompts])


def test_modes_hand_worked():
    prompts = ["pick a lock", "write code"]
    adapter = resolve_weights(prompts, OBJ, Weighting(), FakeAdapter())
    assert adapter.mode == "adapter" and np.allclose(adapter.weights, [[0.8, 0.2], [0.3, 0.7]])
    fixed = resolve_weights(prompts, OBJ, Weighting("fixed", [1, 3]))
    assert fixed.mode == "fixed" and fixed.inferred is None and np.allclose(fixed.weights, [[0.25, 0.75]] * 2)
    blend = resolve_weights(prompts, OBJ, Weighting("blend", {"helpful": 1}), FakeAdapter())
    # λ = 0.5 (the one default): 0.5·(0, 1) + 0.5·w(x)
    assert DEFAULT_BLEND == 0.5 and np.allclose(blend.weights, [[0.4, 0.6], [0.15, 0.85]])
    assert blend.source == "blend(0.5)" and np.allclose(blend.inferred, adapter.weights)


def test_infer_mode_from_the_fields_given():
    assert Weighting.infer().mode == "adapter"
    assert Weighting.infer(weights=[1, 0]).mode == "fixed"
    w = Weighting.infer(weights=[1, 0], blend=0.3)
    assert (w.mode, w.blend) == ("blend", 0.3)
    with pytest.raises(PreforchError, match="only applies to mode 'blend'"):
        Weighting.infer("fixed", [1, 0], 0.3)
    with pytest.raises(PreforchError, match="needs the user's weights"):
        Weighting.infer("blend")
    with pytest.raises(PreforchError, match="drop the user's weights"):
        Weighting("adapter", [1, 0])
    with pytest.raises(PreforchError, match=r"blend must be in \[0, 1\]"):
        Weighting("blend", [1, 0], 1.5)


def test_precomputed_inferred_weights_skip_the_adapter():
    adapter = FakeAdapter()
    out = resolve_weights(["a"], OBJ, Weighting("blend", [1, 0], 1.0), adapter, inferred=np.array([[0.5, 0.5]]))
    assert adapter.calls == 0 and np.allclose(out.weights, [[1.0, 0.0]])


def test_user_weights_checked():
    assert np.allclose(user_vector({"helpful": 2}, OBJ), [0, 1])
    for bad, match in [({"humor": 1}, "unknown objective"), ([1, 2, 3], "2 weights"), ([-1, 2], "non-negative"),
                       ([0, 0], "positive"), ([float("nan"), 1], "finite"), ("ab", "expected 2 numbers")]:
        with pytest.raises(PreforchError, match=match):
            user_vector(bad, OBJ)
    # huge but finite weights normalise without overflow
    assert np.allclose(check_weights([1e308, 1e308], 2), [0.5, 0.5])


def test_mode_adapter_needs_an_adapter_with_the_same_objectives():
    with pytest.raises(PreforchError, match="needs a preference adapter"):
        resolve_weights(["a"], OBJ, Weighting())
    other = FakeAdapter()
    other.objectives = ["helpful", "harmless"]
    with pytest.raises(PreforchError, match=r"\['helpful', 'harmless'\].*\['harmless', 'helpful'\]"):
        resolve_weights(["a"], OBJ, Weighting(), other)
    check_objectives(OBJ, list(OBJ), "adapter")


def test_scalarize_and_choose_best():
    assert np.allclose(scalarize([[0.5, 0.5]], [[1.0, 3.0]]), [2.0])
    rewards = scalarize(np.array([[1.0, 0.0]]), np.array([[[0.0, 5.0], [1.0, 0.0], [1.0, 9.0]]]))  # [1, 3]
    assert rewards.tolist() == [[0.0, 1.0, 1.0]] and choose_best(rewards).tolist() == [1]  # first of a tie


def test_scalarize_broadcasts_a_weight_lattice_and_one_vector():
    lattice = np.array([[1.0, 0.0], [0.25, 0.75]])  # [M=2, K]
    scores = np.array([[2.0, 4.0], [-1.0, 1.0], [0.0, 0.0]])  # [N=3, K]
    # hand-worked: row m, column n = lattice[m]·scores[n]
    assert scalarize(lattice[:, None, :], scores).tolist() == [[2.0, -1.0, 0.0], [3.5, 0.5, 0.0]]
    assert scalarize([0.25, 0.75], scores).tolist() == [3.5, 0.5, 0.0]  # one w for every row
    with pytest.raises(PreforchError, match="same K"):
        scalarize([0.2, 0.3, 0.5], scores)


def test_objective_order_matches_by_name():
    assert objective_order(["b", "c", "a"], ["a", "b", "c"], "x").tolist() == [2, 0, 1]
    weights = np.array([[0.2, 0.3, 0.5]])  # over b, c, a
    assert weights[:, objective_order(["b", "c", "a"], ["a", "b", "c"], "x")].tolist() == [[0.5, 0.2, 0.3]]
    for have in (["a", "b"], ["a", "b", "d"], ["a", "a", "b"]):
        with pytest.raises(PreforchError, match="names differ"):
            objective_order(have, ["a", "b", "c"], "names differ")
