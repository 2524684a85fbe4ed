"""The adapter's uncertainty and the calibrated fallback (issue 22): unfamiliar prompts get low confidence, the
files round-trip, old adapters load without them, and the fallback leaves a user's weights alone when off."""

import json

import numpy as np
import pytest
import torch
from test_adapter import OBJECTIVES, config, synthetic

from preforch.adapter import PreferenceAdapter, train_adapter
from preforch.adapter.uncertainty import UNCERTAINTY_CONFIG, UNCERTAINTY_WEIGHTS, kmeans_centroids
from preforch.errors import PreforchError
from preforch.stats import auc
from preforch.weighting import (
    Weighting,
    WeightPrediction,
    apply_fallback,
    blend_weights,
    fallback_default,
    resolve_weights,
)

UNSEEN = ["what is the capital of france", "translate good morning into german", "recipe for banana bread",
          "how many moons does jupiter have", "explain photosynthesis to a child", "best time to plant tulips"]


@pytest.fixture(scope="module")
def two_kinds(tiny_encoder_dir):
    """An adapter trained on kinds helpful and harmless only, and the data's humor prompts (never seen)."""
    data = synthetic(450)
    seen = [i for i, k in enumerate(data.kinds) if k != "humor"]
    result = train_adapter(config(tiny_encoder_dir, epochs=30, uncertainty_heads=3), data.subset(seen),
                           progress=False)
    unseen = [data.prompts[i] for i, k in enumerate(data.kinds) if k == "humor"][:60]
    return result, unseen


def test_unseen_prompts_are_less_confident(two_kinds):
    result, unseen = two_kinds
    adapter = result.adapter
    seen_test = adapter.predict_from_embeddings_with_confidence(result.test_embeddings)
    out = adapter.predict(unseen + UNSEEN)
    assert out.confidence.shape == (len(unseen) + len(UNSEEN),)
    assert ((out.confidence >= 0) & (out.confidence <= 1)).all()
    u_seen = adapter.uncertainty.score(adapter.mlp, result.test_embeddings).numpy()
    u_out = adapter.uncertainty.score(adapter.mlp, adapter.embed(unseen + UNSEEN)).numpy()
    labels = np.r_[np.ones(len(u_out)), np.zeros(len(u_seen))]
    assert auc(np.r_[u_out, u_seen], labels) >= 0.9
    assert out.confidence.mean() < seen_test.confidence.mean()
    np.testing.assert_allclose(out.default, adapter.uncertainty.train_mean.numpy(), rtol=1e-6)
    assert abs(out.default.sum() - 1) < 1e-5


def test_ramp_is_fitted_on_validation_rows(two_kinds):
    result, _ = two_kinds
    unc = result.adapter.uncertainty
    u_val = unc.score(result.adapter.mlp, result.val_embeddings)
    lo, hi = unc.ramp
    assert lo == pytest.approx(float(torch.quantile(u_val, 0.9)), rel=1e-5)
    assert hi == pytest.approx(float(u_val.max()), rel=1e-5)
    assert float((unc.fallback_share(u_val) > 0).float().mean()) == pytest.approx(0.1, abs=0.03)
    share = unc.fallback_share(torch.tensor([0.0, lo, (lo + hi) / 2, hi, 10 * hi]))
    np.testing.assert_allclose(share.numpy(), [0, 0, 0.5, 1, 1], atol=1e-6)


def test_save_load_keeps_every_tensor_and_the_confidence(two_kinds, tmp_path):
    result, unseen = two_kinds
    adapter = result.adapter
    adapter.save_pretrained(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / UNCERTAINTY_CONFIG).read_text())
    assert meta["format_version"] == 1 and meta["heads"] == 3
    loaded = PreferenceAdapter.from_pretrained(tmp_path / "a", encoder=adapter.encoder)
    for a, b in zip(adapter.uncertainty.heads, loaded.uncertainty.heads, strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name
    assert torch.equal(adapter.uncertainty.centroids, loaded.uncertainty.centroids)
    np.testing.assert_array_equal(adapter.predict(unseen).confidence, loaded.predict(unseen).confidence)


def test_old_adapter_without_uncertainty_loads_and_reports_none(two_kinds, tmp_path):
    result, unseen = two_kinds
    result.adapter.save_pretrained(tmp_path / "old")
    for name in (UNCERTAINTY_CONFIG, UNCERTAINTY_WEIGHTS):
        (tmp_path / "old" / name).unlink()
    old = PreferenceAdapter.from_pretrained(tmp_path / "old", encoder=result.adapter.encoder)
    pred = old.predict(unseen)
    assert old.uncertainty is None and pred.confidence is None and pred.default is None
    used = resolve_weights(unseen, OBJECTIVES, Weighting(fallback="on"), old)
    assert used.confidence is None and (used.fallback == 0).all()
    np.testing.assert_array_equal(used.weights, old.predict_weights(unseen))


def test_half_an_uncertainty_or_a_hostile_one_is_refused(two_kinds, tmp_path):
    result, _ = two_kinds
    result.adapter.save_pretrained(tmp_path / "a")
    (tmp_path / "a" / UNCERTAINTY_WEIGHTS).unlink()
    with pytest.raises(PreforchError, match=r"uncertainty.safetensors: missing"):
        PreferenceAdapter.from_pretrained(tmp_path / "a")
    result.adapter.save_pretrained(tmp_path / "b")
    path = tmp_path / "b" / UNCERTAINTY_CONFIG
    meta = json.loads(path.read_text())
    for bad in ({"heads": 10**6}, {"ramp": [2.0, 1.0]}, {"signal": "vibes"}, {"format_version": 9}):
        path.write_text(json.dumps({**meta, **bad}))
        with pytest.raises(PreforchError, match=r"uncertainty.json"):
            PreferenceAdapter.from_pretrained(tmp_path / "b")
    path.write_text(json.dumps({**meta, "heads": meta["heads"] + 1}))  # a head the weights file lacks
    with pytest.raises(PreforchError, match=r"uncertainty.safetensors"):
        PreferenceAdapter.from_pretrained(tmp_path / "b")


def test_fallback_off_gives_exactly_the_blend_asked_for(two_kinds):
    result, unseen = two_kinds
    adapter, user = result.adapter, [0.2, 0.3, 0.5]
    w = adapter.predict_weights(unseen)
    off = resolve_weights(unseen, OBJECTIVES, Weighting("blend", user, 0.3), adapter)
    np.testing.assert_array_equal(off.weights, blend_weights(w, np.array(user), 0.3))
    assert (off.fallback == 0).all() and off.confidence is not None
    fixed = resolve_weights(unseen, OBJECTIVES, Weighting("fixed", user, fallback="on"), adapter)
    np.testing.assert_allclose(fixed.weights, np.tile(user, (len(unseen), 1)))
    on = resolve_weights(unseen, OBJECTIVES, Weighting("blend", user, 0.3, fallback="on"), adapter)
    lam = on.fallback
    assert lam.max() > 0  # unseen prompts fall back, towards the user's weights in mode blend
    expect = 0.3 * np.array(user) + 0.7 * ((1 - lam)[:, None] * w + lam[:, None] * np.array(user))
    np.testing.assert_allclose(on.weights, expect, atol=1e-12)


def test_fallback_math_by_hand():
    w = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6]])
    out, lam = apply_fallback(w, np.array([1.0, 0.25]), np.array([1 / 3, 1 / 3, 1 / 3]))
    np.testing.assert_allclose(lam, [0.0, 0.75])
    np.testing.assert_allclose(out, [[0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    same, lam0 = apply_fallback(w, None, np.array([1.0, 0, 0]))
    assert same is w and (lam0 == 0).all()
    names, trained = ["a", "b", "c"], np.array([0.5, 0.25, 0.25])
    assert fallback_default(Weighting(), names, None, trained) is None  # off
    np.testing.assert_allclose(fallback_default(Weighting(fallback="on"), names, None, trained), trained)
    np.testing.assert_allclose(fallback_default(Weighting(fallback="uniform"), names, None, trained), [1 / 3] * 3)
    np.testing.assert_allclose(fallback_default(Weighting(fallback={"b": 1.0}), names, None, trained), [0, 1, 0])
    user = np.array([0.0, 0.0, 1.0])  # the user's own weights come first
    np.testing.assert_allclose(fallback_default(Weighting(fallback="uniform"), names, user, trained), user)
    pred = WeightPrediction(w, np.array([0.5, 1.0]), trained)
    used = resolve_weights([None, None], names, Weighting(fallback="on"), inferred=pred)
    np.testing.assert_allclose(used.weights[0], 0.5 * w[0] + 0.5 * trained)
    np.testing.assert_allclose(used.weights[1], w[1])
    with pytest.raises(PreforchError, match="fallback 'sometimes'"):
        Weighting(fallback="sometimes")


def test_kmeans_centroids_are_unit_and_cover_the_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16, generator=gen), dim=-1)
    points = torch.nn.functional.normalize(centres.repeat(50, 1) + 0.05 * torch.randn(200, 16, generator=gen), dim=-1)
    cent = kmeans_centroids(points, 8, seed=0)
    assert cent.shape == (8, 16)
    torch.testing.assert_close(cent.norm(dim=-1), torch.ones(8))
    assert ((centres @ cent.T).max(1).values > 0.98).all()  # every true cluster has a centroid near it
    assert torch.equal(kmeans_centroids(points[:5], 8), points[:5])
