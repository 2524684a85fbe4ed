"""Risk–coverage and the fallback's calibration by λ group: hand-worked numbers (issue 22)."""

import numpy as np
import pytest

from preforch.evaluate.risk_coverage import evaluate_fallback, fallback_markdown, risk_coverage


def test_risk_coverage_keeps_the_most_confident_rows_first():
    conf = np.array([0.9, 0.1, 0.8, 0.2, 0.7])
    outcomes = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    rows = risk_coverage(conf, outcomes, coverages=(0.2, 0.4, 0.6, 1.0), bootstrap=50)
    assert [r["n"] for r in rows] == [1, 2, 3, 5]
    assert [r["accuracy"].mean for r in rows] == pytest.approx([1.0, 1.0, 2 / 3, 0.4])
    assert [r["threshold"] for r in rows] == pytest.approx([0.9, 0.8, 0.7, 0.1])


def test_fallback_groups_by_lambda_and_mixes_towards_the_default():
    # objective 0 decides pairs 0-1 (the adapter weighs it), objective 1 decides pairs 2-3 (the default weighs it)
    chosen = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    rejected = np.array([[0.0, 0.5], [0.0, 0.5], [0.5, 0.0], [0.5, 0.0]])
    weights = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    conf = np.array([1.0, 1.0, 0.6, 0.0])  # λ = 0, 0, 0.4, 1
    ev = evaluate_fallback(weights, conf, np.array([0.0, 1.0]), chosen, rejected, bootstrap=50)
    groups = {r["group"]: r for r in ev.by_lambda}
    assert groups["λ = 0"]["n"] == 2 and groups["λ = 0"]["adapter"].mean == 1.0
    assert groups["λ = 0"]["default"].mean == 0.0
    # λ = 0.4: w = 0.6·(0.9, 0.1) + 0.4·(0, 1) = (0.54, 0.46): margin −0.27 + 0.46 > 0, the default's pair won
    assert groups["0 < λ ≤ ½"]["fallback"].mean == 1.0 and groups["0 < λ ≤ ½"]["adapter"].mean == 0.0
    assert groups["λ > ½"]["fallback"].mean == 1.0
    assert ev.overall["mean_lambda"] == pytest.approx(0.35)
    assert ev.overall["fallback"].mean == 1.0 and ev.overall["adapter"].mean == 0.5
    text = "\n".join(fallback_markdown(ev))
    assert "| λ > ½ | 1 | 1.000 |" in text
    assert "no confidence" in "\n".join(fallback_markdown(type(ev)()))
