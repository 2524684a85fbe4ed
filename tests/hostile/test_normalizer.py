"""The normaliser under hostile scores and saved statistics (issue 12): constant objectives, scores near the
float64 limit, and saved stats that are NaN, integers, the wrong length or zero spreads."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer

NAMES = ["a", "b", "c"]


def _constant_training(method: str) -> Normalizer:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 3))
    scores[:, 1] = 0.25  # objective b never changes in training
    return Normalizer(NAMES, method=method).fit(scores)


@pytest.mark.parametrize("method", ["zscore", "minmax"])
def test_constant_objective_maps_small_changes_to_small_values(method):
    norm = _constant_training(method)
    base = norm.transform(np.array([[0.0, 0.25, 0.0]]))[0, 1]
    moved = norm.transform(np.array([[0.0, 0.25 + 1e-4, 0.0]]))[0, 1]
    assert abs(moved - base) == pytest.approx(1e-4, rel=1e-2)  # not the clip limit, not 10,000


@pytest.mark.parametrize("method", ["zscore", "minmax", "rank"])
def test_constant_objective_warns_at_fit(method, caplog):
    with caplog.at_level(logging.WARNING, logger="preforch.rewards.normalize"):
        _constant_training(method)
    assert any("['b']" in r.getMessage() and "constant" in r.getMessage() for r in caplog.records)


def test_adapter_training_warns_about_a_constant_objective(tiny_encoder_dir, caplog):
    from hostile_helpers import scored_rows

    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.data.load import to_preference_data

    rows = scored_rows(30)
    for r in rows:
        r["score.concise"] = r["score_rejected.concise"] = 3.0
    data = to_preference_data(rows, source="rows")
    config = AdapterConfig(encoder_path=str(tiny_encoder_dir), hidden=8, epochs=2, cache_embeddings=False)
    with caplog.at_level(logging.WARNING):
        train_adapter(config, data, progress=False)
    assert any("concise" in r.getMessage() and "constant" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("method", ["zscore", "minmax", "rank"])
@pytest.mark.parametrize("scores", [
    [[1e308, 0, 1], [-1e308, 1, 2], [1e308, 2, 3]],
    [[1e308, 0, 1], [1e308, 1, 2], [1.7e308, 2, 3]],
    [[-1.7e308, 0, 1], [1.7e308, 1, 2], [0.0, 2, 3]],
], ids=["plus-minus", "all-huge", "near-max"])
def test_extreme_finite_scores_normalise(method, scores):
    norm = Normalizer(NAMES, method=method, clip=None).fit(np.array(scores))
    out = norm.transform(np.array(scores))
    assert np.isfinite(out).all()
    order = np.argsort(np.array(scores)[:, 0], kind="stable")
    assert (np.diff(out[order, 0]) >= 0).all()  # order preserved


def test_extreme_scores_zscore_values():
    norm = Normalizer(NAMES, clip=None).fit(np.array([[-1e308, 0, 0], [1e308, 1, 1]]))
    assert norm.stats["mean"][0] == 0.0 and norm.stats["std"][0] == pytest.approx(1e308)
    assert norm.transform(np.array([[1e308, 0, 0]]))[0, 0] == pytest.approx(1.0)


def test_transform_beyond_float_range_needs_a_clip():
    norm = Normalizer(NAMES, clip=None).fit(np.array([[0.0, 0, 0], [1.0, 1, 1]]))  # std 0.5
    with pytest.raises(PreforchError, match=r"objective 'a' is too large.*clip"):
        norm.transform(np.array([[1.7e308, 0, 0]]))
    clipped = Normalizer(NAMES).fit(np.array([[0.0, 0, 0], [1.0, 1, 1]]))
    assert clipped.transform(np.array([[1.7e308, 0, 0]]))[0, 0] == 5.0


@pytest.mark.parametrize("clip", [0, -1, math.nan, math.inf, "5", True])
def test_bad_clip_is_refused(clip):
    with pytest.raises(PreforchError, match="clip"):
        Normalizer(NAMES, clip=clip)


# ---- property: saved statistics load valid or not at all --------------------------------------------------

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans(), st.none(),
                    st.text(max_size=3))


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["zscore", "minmax", "rank", "other"]),
       stats=st.dictionaries(st.sampled_from(["mean", "std", "min", "max", "sorted", "x"]),
                             st.lists(NUMBERS, max_size=7), max_size=3),
       clip=st.one_of(st.none(), NUMBERS))
def test_property_saved_stats(method, stats, clip):
    data = {"format_version": 1, "objectives": NAMES, "method": method, "clip": clip, "stats": stats}
    try:
        norm = Normalizer.from_dict(data, source="normalizer.json")
    except PreforchError as err:
        assert "\n" not in str(err) and str(err).startswith("normalizer.json"), str(err)
        return
    out = norm.transform(np.random.default_rng(1).normal(scale=100, size=(5, 3)))
    assert out.shape == (5, 3) and np.isfinite(out).all()
