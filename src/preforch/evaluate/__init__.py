"""Evaluation: fixed-weight baselines on a simplex lattice, Pareto fronts, hypervolume, reports and plots.

The pure core (``pareto``, ``metrics``, ``synthetic``) needs numpy only; plots import matplotlib lazily.
"""

from preforch.evaluate.pareto import dominates, hypervolume, pareto_front, pareto_mask, simplex_lattice

__all__ = ["dominates", "hypervolume", "pareto_front", "pareto_mask", "simplex_lattice"]
