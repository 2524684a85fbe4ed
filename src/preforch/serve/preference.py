"""Request-side weight handling, pure over arrays: user weights → a vector, and the mode rules
(auto / fixed / blend) that combine them with the adapter's w(x). Errors name the request field."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preforch.errors import PreforchError
from preforch.weighting import blend_weights, check_weights


class RequestError(PreforchError):
    """A request the server refuses with a 422; ``loc`` is the field path, as FastAPI reports it."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass
class ResolvedWeights:
    """The weights a request uses. Shape of ``weights`` and ``inferred``: [N, K]."""

    weights: np.ndarray  # [N, K]
    inferred: np.ndarray  # [N, K]
    mode: str
    blend: float | None


def user_vector(weights: list[float] | dict[str, float], objectives: list[str],
                loc: tuple[str | int, ...]) -> np.ndarray:
    """A list (objective order) or a mapping objective → weight (missing count 0), checked. Shape: [K]."""
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - set(objectives))
        if unknown:
            raise RequestError(loc, f"unknown objective(s) {unknown}; expected names from {objectives}")
        weights = [float(weights.get(name, 0.0)) for name in objectives]
    try:
        return check_weights(weights, len(objectives), "weights")  # [K]
    except PreforchError as err:
        raise RequestError(loc, f"{err} (objectives {objectives})") from None


def resolve_mode(mode: str | None, has_weights: bool, has_blend: bool, loc: tuple[str | int, ...]) -> str:
    """The mode a preference asks for; contradictions are errors rather than silently ignored fields."""
    if mode is None:
        mode = ("blend" if has_blend else "fixed") if has_weights else "auto"
    if mode == "auto" and has_weights:
        raise RequestError((*loc, "weights"), "mode 'auto' uses the adapter's weights; drop 'weights' or use "
                                               "mode 'fixed' or 'blend'")
    if mode in ("fixed", "blend") and not has_weights:
        raise RequestError((*loc, "weights"), f"mode {mode!r} needs 'weights'")
    if has_blend and mode != "blend":
        raise RequestError((*loc, "blend"), f"'blend' only applies to mode 'blend', got mode {mode!r}")
    return mode


def resolve_weights(preference, objectives: list[str], inferred: np.ndarray, default_blend: float,
                    loc: tuple[str | int, ...] = ("body", "preference")) -> ResolvedWeights:
    """Combine a request's ``preference`` (a :class:`~preforch.serve.schemas.Preference` or None) with w(x).

    Shapes: inferred [N, K] → weights [N, K].
    """
    inferred = np.asarray(inferred, dtype=np.float64)
    if preference is None:
        return ResolvedWeights(inferred, inferred, "auto", None)
    mode = resolve_mode(preference.mode, preference.weights is not None, preference.blend is not None, loc)
    if mode == "auto":
        return ResolvedWeights(inferred, inferred, "auto", None)
    user = user_vector(preference.weights, objectives, (*loc, "weights"))  # [K]
    lam = 1.0 if mode == "fixed" else (default_blend if preference.blend is None else float(preference.blend))
    weights = blend_weights(inferred, user, lam)  # [N, K]
    return ResolvedWeights(weights, inferred, mode, None if mode == "fixed" else lam)


def as_named(row: np.ndarray, objectives: list[str]) -> dict[str, float]:
    """One row as objective → float. Shape: [K]."""
    return {name: float(v) for name, v in zip(objectives, row)}


def objective_order(scorer_objectives: list[str], adapter_objectives: list[str]) -> np.ndarray:
    """Column index that reorders scorer columns into the adapter's order. Shape: [K]."""
    if sorted(scorer_objectives) != sorted(adapter_objectives):
        raise PreforchError(f"the scorers give objectives {scorer_objectives}, the adapter weighs "
                            f"{adapter_objectives}; configure scorers with the adapter's objectives")
    return np.array([scorer_objectives.index(name) for name in adapter_objectives], dtype=np.int64)


def apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; returns the text and whether it was cut."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [text.find(s) for s in stops if s and s in text]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def check_preference(preference, objectives: list[str], loc: tuple[str | int, ...] = ("body", "preference")) -> None:
    """Validate a preference before any model runs (same rules and messages as :func:`resolve_weights`)."""
    k = len(objectives)
    resolve_weights(preference, objectives, np.full((1, k), 1.0 / k), 0.5, loc)
