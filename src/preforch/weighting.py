"""The one home of weight resolution and weight arithmetic, shared by training, alignment, evaluation, the
CLI and the server.

- :class:`Weighting` says where per-prompt weights come from: ``adapter`` (w(x)), ``fixed`` (the user's
  weights for every prompt) or ``blend`` (λ·w_user + (1−λ)·w(x)), with one blend default.
- :func:`resolve_weights` turns a weighting, an adapter and conversations into w [N, K], applying the calibrated
  fallback w = (1 − λ(x))·w(x) + λ(x)·w_default where the weighting asks for it (issue 22).
- :class:`WeightingSettings` is the same as settings (``weight_mode``, ``user_weights``, ``blend``, ``fallback``):
  the one part every route's config takes (align, generate, `preforch weights`); the server, whose requests say
  their own weighting, takes its base :class:`FallbackSettings`.
- :func:`scalarize` is R = Σ_k w_k·s̃_k, :func:`choose_best` the best-of choice, :func:`check_objectives`
  the one check that two objective lists agree name for name and in order, :func:`objective_order` the one
  reorder of columns by name where the order may differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np

from preforch.config import field
from preforch.errors import PreforchError

WeightMode = Literal["adapter", "fixed", "blend"]
#: λ of mode 'blend' when none is given: half the user's weights, half the adapter's.
DEFAULT_BLEND = 0.5
UserWeights = Sequence[float] | Mapping[str, float]
FallbackChoice = Literal["off", "on", "uniform"]
#: Values of Weighting.fallback that are not weights.
FALLBACK_CHOICES = get_args(FallbackChoice)


@dataclass
class WeightPrediction:
    """An adapter's w(x) with how sure it is. Shapes: weights [N, K]; confidence [N] in [0, 1] (1 − λ(x), the
    calibrated fallback share), None for an adapter saved without uncertainty; default [K], the training-mean
    weights (None without uncertainty)."""

    weights: np.ndarray  # [N, K]
    confidence: np.ndarray | None = None  # [N]
    default: np.ndarray | None = None  # [K]


class WeightSource(Protocol):
    """What resolution needs from a :class:`preforch.adapter.PreferenceAdapter`."""

    objectives: list[str]

    def predict_weights(self, prompts, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


@dataclass
class Weighting:
    """Where per-prompt weights come from. Used by every route; validated on construction. As settings (with
    their help texts): :class:`WeightingSettings`."""

    mode: WeightMode = "adapter"
    weights: list[float] | dict[str, float] | None = None  # the user's weights (modes fixed/blend)
    blend: float = DEFAULT_BLEND  # mode blend: λ, the share of the user's weights
    fallback: FallbackChoice | list[float] | dict[str, float] = "off"  # see WeightingSettings.fallback

    def __post_init__(self) -> None:
        if self.mode not in get_args(WeightMode):
            raise PreforchError(f"weighting: mode {self.mode!r}, expected one of {list(get_args(WeightMode))}")
        if self.mode in ("fixed", "blend") and self.weights is None:
            raise PreforchError(f"weighting: mode {self.mode!r} needs the user's weights")
        if self.mode == "adapter" and self.weights is not None:
            raise PreforchError("weighting: mode 'adapter' uses the adapter's weights; drop the user's weights or "
                                "use mode 'fixed' or 'blend'")
        if not 0.0 <= float(self.blend) <= 1.0:
            raise PreforchError(f"weighting: blend must be in [0, 1], got {self.blend}")
        if isinstance(self.fallback, str) and self.fallback not in FALLBACK_CHOICES:
            raise PreforchError(f"weighting: fallback {self.fallback!r}, expected one of {list(FALLBACK_CHOICES)} "
                                "or default weights")
        if not isinstance(self.fallback, (str, list, dict)):
            raise PreforchError(f"weighting: fallback must be one of {list(FALLBACK_CHOICES)} or default weights, got "
                                f"{type(self.fallback).__name__}")

    @property
    def falls_back(self) -> bool:
        return self.fallback != "off"

    @property
    def needs_adapter(self) -> bool:
        return self.mode in ("adapter", "blend")

    @classmethod
    def infer(cls, mode: str | None = None, weights: UserWeights | None = None,
              blend: float | None = None, fallback: str | UserWeights = "off") -> Weighting:
        """The weighting a request asks for when some fields are left out: no weights → adapter; weights →
        fixed; weights and a blend → blend. Contradictions (a blend without mode blend) are errors."""
        if mode is None:
            mode = ("blend" if blend is not None else "fixed") if weights is not None else "adapter"
        if blend is not None and mode != "blend":
            raise PreforchError(f"weighting: a blend only applies to mode 'blend', got mode {mode!r}")
        w = dict(weights) if isinstance(weights, Mapping) else None if weights is None else list(weights)
        fb = dict(fallback) if isinstance(fallback, Mapping) else fallback if isinstance(fallback, str) \
            else list(fallback)
        return cls(mode=mode, weights=w, blend=DEFAULT_BLEND if blend is None else float(blend), fallback=fb)


@dataclass
class FallbackSettings:
    """The calibrated fallback as a setting. `preforch serve` takes this part alone (each request says its own
    weighting, and may override the fallback); every other route takes it through :class:`WeightingSettings`."""

    fallback: FallbackChoice | list[float] | dict[str, float] = field(
        "off", help="the calibrated fallback w = (1−λ(x))·w(x) + λ(x)·w_default on prompts the adapter is unsure "
                    "of, λ(x) from its uncertainty (0 on familiar prompts, up to 1 on unfamiliar ones): off; on "
                    "(w_default: the user's weights in mode blend, else the adapter's training-mean weights); "
                    "uniform; or default weights (a list in objective order or {objective: weight}). An adapter "
                    "saved without uncertainty uses λ = 0. In YAML quote on/off (\"on\"): bare on is a boolean")

    def weighting(self) -> Weighting:
        """The weighting these settings give (the adapter's w(x), with the fallback); errors start
        ``weighting:``."""
        return Weighting(fallback=self.fallback)


@dataclass
class WeightingSettings(FallbackSettings):
    """Where each prompt's weights come from, as settings: one YAML key and one ``--flag`` each, the same in
    every route. Left out, the mode follows from what is given (see :meth:`Weighting.infer`)."""

    weight_mode: WeightMode | None = field(None, help="per-prompt weights: 'adapter' (w(x) from the adapter), "
                                           "'fixed' (user_weights for every prompt) or 'blend' (blend·user + "
                                           "(1−blend)·w(x)); null = adapter without user_weights, fixed with them, "
                                           "blend with them and a blend")
    user_weights: list[float] | dict[str, float] | None = field(None, help="the user's weights (modes fixed/blend): "
                                                                           "one per objective in objective order "
                                                                           "(e.g. 0.2,0.5,0.3), or {objective: "
                                                                           "weight}")
    blend: float | None = field(None, help="mode blend: λ, the share of the user's weights (1 = user only, 0 = "
                                           "adapter only); null = 0.5")

    def weighting(self) -> Weighting:
        return Weighting.infer(self.weight_mode, self.user_weights, self.blend, self.fallback)


@dataclass
class ResolvedWeights:
    """The weights a call uses and where they came from. Shapes: weights, inferred [N, K]."""

    weights: np.ndarray  # [N, K]
    inferred: np.ndarray | None  # [N, K], the adapter's w(x); None in mode fixed
    mode: str
    blend: float | None  # λ in mode blend, else None
    confidence: np.ndarray | None = None  # [N], the adapter's confidence; None when unknown (no uncertainty saved)
    fallback: np.ndarray | None = None  # [N], the fallback share λ(x) applied (0 when off); None in mode fixed

    @property
    def source(self) -> str:
        return "adapter" if self.mode == "adapter" else "user" if self.mode == "fixed" else f"blend({self.blend:g})"


def check_objectives(expected: Sequence[str], got: Sequence[str], what: str, against: str = "the scorers'") -> None:
    """Two objective lists must be equal, names and order; the error names both lists."""
    if list(expected) != list(got):
        raise PreforchError(f"{what} objectives {list(got)} differ from {against} objectives {list(expected)}; "
                            "the same names in the same order are needed")


def objective_order(have: Sequence[str], want: Sequence[str], message: str) -> np.ndarray:
    """Indices that reorder columns over ``have`` into the order of ``want``, matched by name (never by position).
    Different names raise ``message``, which names both lists. Shape: [K]."""
    have, want = list(have), list(want)
    if sorted(have) != sorted(want) or len(set(have)) != len(have):
        raise PreforchError(message)
    return np.array([have.index(name) for name in want], dtype=np.int64)


def check_weights(weights, k: int, what: str = "weights") -> np.ndarray:
    """Validate user weights: length K, finite, non-negative, positive sum; returned normalised to sum 1.

    Shape: [K] or [N, K] → same shape.
    """
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise PreforchError(f"{what}: expected {k} numbers, got {weights!r}") from None
    if w.shape[-1:] != (k,) or w.ndim not in (1, 2):
        raise PreforchError(f"{what}: expected {k} weights (one per objective), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise PreforchError(f"{what}: weights must be finite, got {w.tolist()}")
    if (w < 0).any():
        raise PreforchError(f"{what}: weights must be non-negative, got {w.tolist()}")
    scale = w.max(-1, keepdims=True)
    if (scale <= 0).any():
        raise PreforchError(f"{what}: weights must sum to a positive number, got {w.tolist()}")
    w = w / scale  # divide by the largest first, so huge finite weights cannot overflow the sum
    return w / w.sum(-1, keepdims=True)


def user_vector(weights: UserWeights, objectives: Sequence[str], what: str = "weights") -> np.ndarray:
    """The user's weights as a checked vector in objective order. A mapping names objectives (missing ones
    count 0). Shape: [K]."""
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(objectives))
        if unknown:
            raise PreforchError(f"{what}: unknown objective(s) {unknown}; expected names from {list(objectives)}")
        weights = [weights.get(name, 0.0) for name in objectives]
    return check_weights(weights, len(objectives), f"{what} (objectives {list(objectives)})")


def blend_weights(inferred: np.ndarray, user: np.ndarray | None, lam: float = DEFAULT_BLEND) -> np.ndarray:
    """λ·w_user + (1−λ)·w(x). ``lam`` = 1 uses the user's weights alone, 0 the adapter's alone.

    Shapes: inferred [N, K]; user [K] or [N, K] → [N, K].
    """
    inferred = np.asarray(inferred, dtype=np.float64)
    if user is None:
        return inferred
    if not 0.0 <= lam <= 1.0:
        raise PreforchError(f"blend factor must be in [0, 1], got {lam}")
    u = check_weights(user, inferred.shape[-1], "user weights")
    return lam * np.broadcast_to(u, inferred.shape) + (1.0 - lam) * inferred  # [N, K]


def fallback_default(weighting: Weighting, objectives: Sequence[str], user: np.ndarray | None,
                     trained: np.ndarray | None) -> np.ndarray | None:
    """w_default of the fallback: the user's weights (mode blend), else the configured default, else the
    adapter's training-mean weights ``trained`` [K]. Shape: [K]; None when the fallback is off."""
    if not weighting.falls_back:
        return None
    if user is not None:
        return user
    if weighting.fallback == "uniform":
        return np.full(len(objectives), 1.0 / len(objectives))
    if isinstance(weighting.fallback, (list, dict)):
        return user_vector(weighting.fallback, objectives, "fallback weights")
    return None if trained is None else check_weights(trained, len(objectives), "training-mean weights")


def apply_fallback(inferred: np.ndarray, confidence: np.ndarray | None,
                   default: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(1 − λ)·w(x) + λ·w_default with λ = 1 − confidence; λ = 0 without a confidence or a default.

    Shapes: inferred [N, K], confidence [N], default [K] → weights [N, K], λ [N].
    """
    lam = np.zeros(len(inferred))
    if confidence is None or default is None:
        return inferred, lam
    lam = np.clip(1.0 - np.asarray(confidence, dtype=np.float64), 0.0, 1.0)  # [N]
    return (1.0 - lam)[:, None] * inferred + lam[:, None] * default[None, :], lam  # [N, K]


def resolve_weights(prompts: Sequence, objectives: Sequence[str], weighting: Weighting,
                    adapter: WeightSource | None = None, inferred: np.ndarray | WeightPrediction | None = None,
                    batch_size: int = 64, progress: bool = False) -> ResolvedWeights:
    """Per-prompt weights [N, K] for ``prompts`` (conversations or anything the adapter parses).

    ``inferred`` may be given when the adapter's weights are already known (the server computes them in one
    batch): w(x) [N, K], or a :class:`WeightPrediction` with its confidence; otherwise the adapter predicts
    them. Objective order is checked against the adapter's. With the fallback on, the adapter's part of the
    weights moves towards w_default by λ(x) = 1 − confidence(x) (see :func:`fallback_default`).
    """
    n, k = len(prompts), len(objectives)
    user = None if weighting.weights is None else user_vector(weighting.weights, objectives, "user weights")
    prediction = inferred if isinstance(inferred, WeightPrediction) else None
    if prediction is None and inferred is None and weighting.needs_adapter:
        if adapter is None:
            raise PreforchError(f"weighting mode {weighting.mode!r} needs a preference adapter")
        check_objectives(objectives, adapter.objectives, "adapter", "the configured")
        predict = getattr(adapter, "predict", None)
        prediction = (predict(list(prompts), batch_size=batch_size, progress=progress) if predict is not None else
                      WeightPrediction(adapter.predict_weights(list(prompts), batch_size=batch_size,
                                                               progress=progress)))
    if prediction is not None:
        inferred = prediction.weights
    confidence = None if prediction is None or prediction.confidence is None else \
        np.asarray(prediction.confidence, dtype=np.float64)  # [N]
    if weighting.mode == "fixed":
        return ResolvedWeights(np.array(np.broadcast_to(user, (n, k))), inferred, "fixed", None, confidence, None)
    inferred = np.asarray(inferred, dtype=np.float64)
    if inferred.shape != (n, k):
        raise PreforchError(f"adapter weights of shape {inferred.shape}, expected {(n, k)}")
    if confidence is not None and confidence.shape != (n,):
        raise PreforchError(f"adapter confidence of shape {confidence.shape}, expected {(n,)}")
    default = fallback_default(weighting, objectives, user, None if prediction is None else prediction.default)
    adapted, lam = apply_fallback(inferred, confidence, default)  # [N, K], [N]
    if weighting.mode == "adapter":
        return ResolvedWeights(adapted, inferred, "adapter", None, confidence, lam)
    return ResolvedWeights(blend_weights(adapted, user, weighting.blend), inferred, "blend", float(weighting.blend),
                           confidence, lam)


def scalarize(weights: np.ndarray, normalized_scores: np.ndarray) -> np.ndarray:
    """R = Σ_k w_k·s̃_k, the one place it is computed (rewards, pair labels, best-of-N, evaluation).

    Shapes: weights [N, K] with scores [N, G, K] → [N, G] (per-prompt weights over each prompt's candidates);
    otherwise the two broadcast against each other over all but the last axis: [K] with [..., K] → [...],
    [N, K] with [N, K] → [N], [M, 1, K] with [N, K] → [M, N] (a weight lattice against every row).
    """
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(normalized_scores, dtype=np.float64)
    if w.shape[-1:] != s.shape[-1:]:
        raise PreforchError(f"scalarize: weights of shape {w.shape} and scores of shape {s.shape} need the same K")
    if s.ndim == 3 and w.ndim == 2:
        return np.einsum("nk,ngk->ng", w, s)  # [N, G]
    return (w * s).sum(-1)  # broadcast shape without K


def choose_best(rewards: np.ndarray) -> np.ndarray:
    """Index of the highest reward per prompt; the first such index on ties. Shape: [N, G] → [N]."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise PreforchError(f"choose_best: rewards of shape {r.shape}, expected [N, G] with G >= 1")
    bad = ~np.isfinite(r)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise PreforchError(f"choose_best: reward of prompt {i}, candidate {j} is {r[i, j]}")
    return np.argmax(r, axis=1).astype(np.int64)  # [N]; argmax returns the first maximum
