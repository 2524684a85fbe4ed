"""Bootstrap intervals by prompt, paired differences and AUC: hand-worked numbers."""

import numpy as np
import pytest

from preforch.stats import auc, auc_estimate, bootstrap_interval, estimate, paired_difference


def test_auc_hand_worked_with_ties():
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    # one positive (0.5) vs negatives (0.5, 0.2): one tie (½) and one win → 0.75
    assert auc([0.5, 0.5, 0.2], [1, 0, 0]) == pytest.approx(0.75)
    assert np.isnan(auc([0.1, 0.2], [1, 1]))


def test_intervals_resample_prompts_not_rows():
    # 10 prompts, 10 identical rows each: by prompt the interval is as wide as for 10 rows, not 100.
    values = np.repeat(np.r_[np.ones(5), np.zeros(5)], 10)
    groups = np.repeat(np.arange(10), 10)
    lo_g, hi_g = bootstrap_interval(values, groups, 2000, seed=0)
    lo_r, hi_r = bootstrap_interval(values, None, 2000, seed=0)
    assert hi_g - lo_g > 2 * (hi_r - lo_r)
    e = estimate(values, groups, 500)
    assert (e.n, e.n_prompts, e.mean) == (100, 10, 0.5) and e.lo < 0.5 < e.hi


def test_paired_difference_and_p_value():
    a, b = np.ones(50), np.zeros(50)
    d = paired_difference(a, b, np.arange(50), 1000)
    assert (d.mean, d.lo, d.hi) == (1.0, 1.0, 1.0) and d.p_value == pytest.approx(1e-3)
    same = paired_difference(np.r_[np.ones(25), np.zeros(25)], np.r_[np.zeros(25), np.ones(25)], None, 1000)
    assert same.mean == 0.0 and same.lo < 0 < same.hi and same.p_value > 0.5


def test_auc_estimate_interval():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60), np.zeros(60)].astype(bool)
    s = np.where(y, rng.normal(1, 1, 120), rng.normal(0, 1, 120))
    e = auc_estimate(s, y, None, 300)
    assert e.lo < e.mean < e.hi and 0.6 < e.mean < 0.9
