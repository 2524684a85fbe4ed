"""Request-side weight handling: a request's ``preference`` mapped onto the one weighting of
:mod:`preforch.weighting` (mode 'auto' is the API's name for 'adapter'). Errors name the request field."""

from __future__ import annotations

import numpy as np

from preforch.errors import PreforchError
from preforch.weighting import ResolvedWeights, Weighting, WeightPrediction, resolve_weights


class RequestError(PreforchError):
    """A request the server refuses with a 422; ``loc`` is the field path, as FastAPI reports it."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def request_weighting(preference, loc: tuple[str | int, ...] = ("body", "preference"),
                      fallback: str | list | dict = "off") -> Weighting:
    """A request's ``preference`` (a :class:`~preforch.serve.schemas.Preference` or None) as a
    :class:`~preforch.weighting.Weighting`; 'auto' is the API's name for mode 'adapter'. Contradictions are
    errors naming the field, never silently ignored fields. ``fallback``: the server's setting, used when the
    request names none."""
    if preference is None:
        return Weighting(fallback=fallback)
    if preference.fallback is not None:
        fallback = preference.fallback
    mode = "adapter" if preference.mode == "auto" else preference.mode
    has_weights = preference.weights is not None
    if mode == "adapter" and has_weights:
        raise RequestError((*loc, "weights"), f"mode {preference.mode!r} uses the adapter's weights; drop 'weights' "
                                              "or use mode 'fixed' or 'blend'")
    if mode in ("fixed", "blend") and not has_weights:
        raise RequestError((*loc, "weights"), f"mode {mode!r} needs 'weights'")
    try:
        return Weighting.infer(mode, preference.weights, preference.blend, fallback)
    except PreforchError as err:
        raise RequestError((*loc, "fallback" if "fallback" in str(err) else "blend"), str(err)) from None


def resolve_request(preference, objectives: list[str], inferred,
                    loc: tuple[str | int, ...] = ("body", "preference"),
                    fallback: str | list | dict = "off") -> ResolvedWeights:
    """The weights a request uses, from the adapter's w(x) ``inferred`` [N, K] or a
    :class:`~preforch.weighting.WeightPrediction` with its confidence (one resolver:
    :func:`preforch.weighting.resolve_weights`); ``fallback``: the server's setting."""
    weighting = request_weighting(preference, loc, fallback)
    n = len(inferred.weights) if hasattr(inferred, "weights") else len(inferred)
    try:
        return resolve_weights([None] * n, objectives, weighting, inferred=inferred)
    except PreforchError as err:
        raise RequestError((*loc, "fallback" if "fallback" in str(err) else "weights"), str(err)) from None


def as_named(row: np.ndarray, objectives: list[str]) -> dict[str, float]:
    """One row as objective → float. Shape: [K]."""
    return {name: float(v) for name, v in zip(objectives, row)}


def apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; returns the text and whether it was cut."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [text.find(s) for s in stops if s and s in text]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def check_preference(preference, objectives: list[str], loc: tuple[str | int, ...] = ("body", "preference")) -> None:
    """Validate a preference before any model runs (same rules and messages as :func:`resolve_request`)."""
    k = len(objectives)
    resolve_request(preference, objectives, WeightPrediction(np.full((1, k), 1.0 / k), np.ones(1), np.full(k, 1 / k)),
                    loc)
