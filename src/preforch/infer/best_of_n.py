"""Best-of-N with prompt-aware weights: sample G ≥ 2 replies per prompt, score them on K objectives,
normalise, weight with w(x) (the adapter's, the user's, or a blend) and keep the reply with the highest
R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

The pure core (:func:`rank_candidates`, and :func:`preforch.weighting.resolve_weights` /
:func:`preforch.weighting.choose_best`) works on arrays; only :func:`best_of_n` touches a model. No trl/peft here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from preforch.conversation import Conversation, as_conversations
from preforch.errors import PreforchError
from preforch.infer.floor import Floor, choose_with_floor, floor_passes
from preforch.infer.prefill import prefill_layer, prefill_matches, prompt_token_count
from preforch.models.generation import GenerationConfig, generate_with_config, generate_with_prompt_states
from preforch.rewards.normalize import Normalizer
from preforch.rewards.scorer import Scorer
from preforch.weighting import (
    Weighting,
    check_objectives,
    choose_best,
    resolve_weights,
    scalarize,
    user_vector,
)

log = logging.getLogger(__name__)

#: A policy: a (model, tokenizer) pair, or any ``fn(prompts, n) -> [N][n] texts``.
GenerateFn = Callable[[list[str], int], list[list[str]]]


@dataclass
class BestOfNResult:
    """The chosen reply per prompt, and (when asked) every candidate with its scores.

    Shapes: ``best_index`` [N]; ``weights`` [N, K]; ``best_rewards`` [N]; ``best_raw_scores`` and
    ``best_normalized_scores`` [N, K]; ``candidates`` [N][G]; ``raw_scores`` / ``normalized_scores``
    [N, G, K]; ``rewards`` [N, G]. ``weight_source``: adapter, user or blend; ``normalizer_source``:
    given, adapter, candidates (z-score fitted on this call's candidates) or none (one objective).
    """

    prompts: list[Conversation]
    objectives: list[str]
    responses: list[str]
    best_index: np.ndarray  # [N]
    weights: np.ndarray  # [N, K]
    best_rewards: np.ndarray  # [N]
    best_raw_scores: np.ndarray  # [N, K]
    best_normalized_scores: np.ndarray  # [N, K]
    weight_source: str
    normalizer_source: str
    n: int
    candidates: list[list[str]] | None = None  # [N][G]
    raw_scores: np.ndarray | None = None  # [N, G, K]
    normalized_scores: np.ndarray | None = None  # [N, G, K]
    rewards: np.ndarray | None = None  # [N, G]
    floored: np.ndarray | None = None  # [N] True where no candidate passed the floor (the floor's reply served)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per prompt, scores and weights keyed by objective name."""

        def named(row) -> dict[str, float]:
            return {k: float(v) for k, v in zip(self.objectives, row)}

        records = []
        for i, prompt in enumerate(self.prompts):
            rec: dict[str, Any] = {
                "prompt": prompt.to_messages(), "response": self.responses[i], "best_index": int(self.best_index[i]),
                "n": self.n, "reward": float(self.best_rewards[i]), "weights": named(self.weights[i]),
                "weight_source": self.weight_source, "scores": named(self.best_raw_scores[i]),
                "normalized_scores": named(self.best_normalized_scores[i]),
            }
            if self.floored is not None:
                rec["floored"] = bool(self.floored[i])
            if self.candidates is not None:
                rec["candidates"] = [
                    {"response": text, "reward": float(self.rewards[i, j]), "scores": named(self.raw_scores[i, j]),
                     "normalized_scores": named(self.normalized_scores[i, j])}
                    for j, text in enumerate(self.candidates[i])
                ]
            records.append(rec)
        return records


def rank_candidates(raw_scores: np.ndarray, weights: np.ndarray,
                    normalizer: Normalizer | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise, scalarise and choose. Shapes: raw [N, G, K], weights [N, K] →
    normalised [N, G, K], R [N, G], best [N]. ``normalizer`` None keeps the raw scores."""
    raw = np.asarray(raw_scores, dtype=np.float64)
    if raw.ndim != 3:
        raise PreforchError(f"rank_candidates: scores of shape {raw.shape}, expected [N, G, K]")
    n, g, k = raw.shape
    if normalizer is None:
        normed = raw
    else:
        normed = normalizer.transform(raw.reshape(n * g, k)).reshape(n, g, k).astype(np.float64)  # [N, G, K]
    rewards = scalarize(weights, normed)  # [N, G]
    return normed, rewards, choose_best(rewards)


def rank_with_floor(raw_scores: np.ndarray, weights: np.ndarray, normalizer: Normalizer | None,
                    floor: Floor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`rank_candidates`, then the floor (when enabled) picks among the candidates that clear it.

    ``raw_scores`` [N, G(+1), K]: when the floor compares with its reply (:meth:`Floor.with_reply`), the last
    column holds the reply's scores. Returns raw and normalised scores of the candidates [N, G, K], R [N, G], the
    chosen index [N] and, with the floor on, whether the floor's reply is served instead [N] (else None).
    """
    raw = np.asarray(raw_scores, dtype=np.float64)
    raw, reply_raw = (raw[:, :-1], raw[:, -1]) if floor.scores_reply else (raw, None)  # [N, G, K], [N, K]
    normed, rewards, best = rank_candidates(raw, weights, normalizer)
    if not floor.enabled:
        return raw, normed, rewards, best, None
    reply = reply_raw if reply_raw is None or normalizer is None else normalizer.transform(reply_raw)  # [N, K]
    best, floored = choose_with_floor(rewards, floor_passes(normed, weights, floor.bar(reply), floor.share))
    return raw, normed, rewards, best, floored


def score_each(scorer: Scorer, prompts: list, candidates: list[list[str]]) -> list[np.ndarray]:
    """Raw scores of every prompt's candidates, in one scorer call; prompts may have different numbers of
    candidates. Shape: [N][G_i] texts → N arrays [G_i, K]. A wrong shape or a non-finite score is an error
    naming the prompt, the candidate and the objective."""
    k = len(scorer.objectives)
    owner = [(i, j) for i, row in enumerate(candidates) for j in range(len(row))]  # flat row → (prompt, candidate)
    flat = [c for row in candidates for c in row]
    raw = np.asarray(scorer.score([prompts[i] for i, _ in owner], flat), dtype=np.float64)
    if raw.shape != (len(flat), k):
        raise PreforchError(f"scorer returned shape {raw.shape} for {len(flat)} candidates, expected {(len(flat), k)}")
    bad = ~np.isfinite(raw)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"scorer gave {raw[row, col]} for prompt {owner[row][0]}, candidate {owner[row][1]}, "
                            f"objective {scorer.objectives[col]!r}")
    return np.split(raw, np.cumsum([len(row) for row in candidates])[:-1])


def score_candidates(scorer: Scorer, prompts: list, candidates: list[list[str]]) -> np.ndarray:
    """Raw scores of G candidates per prompt. Shape: [N][G] texts → [N, G, K]."""
    return np.stack(score_each(scorer, prompts, candidates))  # [N, G, K]


def sample_candidates(policy, prompts: list, n: int, generation=None, progress: bool = False) -> list[list[str]]:
    """``n`` replies per prompt from a (model, tokenizer) pair or a ``fn(prompts, n)``. Shape: [N][n]."""
    if callable(policy) and not isinstance(policy, tuple):
        out = policy(list(prompts), n)
    else:
        config = generation or GenerationConfig()
        if not config.do_sample:
            raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
        model, tokenizer = policy
        config = dataclasses.replace(config, num_return_sequences=n)
        out = generate_with_config(model, tokenizer, list(prompts), config, progress=progress)
    if len(out) != len(prompts) or any(len(row) != n for row in out):
        raise PreforchError(f"policy returned {[len(r) for r in out]} replies for {len(prompts)} prompts, "
                            f"expected {n} each")
    return out


def best_of_n(prompts: list, policy, scorer: Scorer, n: int, *, adapter=None, weighting: Weighting | None = None,
              normalizer: Normalizer | None = None, generation=None, return_candidates: bool = False,
              progress: bool = False, floor: Floor | None = None) -> BestOfNResult:
    """Sample ``n`` replies per prompt and keep the one with the highest R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

    ``prompts``: conversations (or texts / message lists). ``weighting`` says where w comes from (default: the
    adapter's w(x)); see :class:`preforch.weighting.Weighting`. The normaliser is ``normalizer`` if given, else
    the adapter's, else a z-score fitted on this call's candidates (so fixed weights act on comparable scales).
    ``generation`` is a GenerationConfig. ``floor`` (enabled): serve only replies that clear it, else its reply
    (see :mod:`preforch.infer.floor`).
    """
    if isinstance(prompts, str) or not prompts:
        raise PreforchError("best-of-N: give a non-empty list of prompts")
    if n < 2:
        raise PreforchError(f"best-of-N needs N >= 2 candidates per prompt, got {n}")
    prompts = as_conversations(prompts)
    objectives = list(scorer.objectives)
    weighting = weighting or Weighting()
    if adapter is not None:
        check_objectives(objectives, adapter.objectives, "adapter")
    elif weighting.needs_adapter:
        raise PreforchError("best-of-N needs weights: give an adapter, or fixed weights (Weighting(mode='fixed', "
                            "weights=...))")
    if normalizer is not None:
        check_objectives(objectives, normalizer.objectives, "normalizer")
    if weighting.weights is not None:  # refuse bad weights before the slow generation
        user_vector(weighting.weights, objectives, "user weights")
    candidates, inferred = _candidates_and_weights(policy, prompts, n, generation, progress, adapter, weighting)
    resolved = resolve_weights(prompts, objectives, weighting, adapter, inferred=inferred)  # [N, K]
    floor = floor or Floor()
    raw = score_candidates(scorer, prompts, [floor.with_reply(c) for c in candidates])  # [N, G(+1), K]
    norm, norm_source = _pick_normalizer(normalizer, adapter, raw[:, :len(candidates[0])], objectives)
    raw, normed, rewards, best, floored = rank_with_floor(raw, resolved.weights, norm, floor)  # [N, G, K], ..., [N]
    rows = np.arange(len(prompts))
    responses = [floor.reply if floored is not None and floored[i] else candidates[i][j] for i, j in enumerate(best)]
    return BestOfNResult(
        prompts=prompts, objectives=objectives, n=n, floored=floored,
        responses=responses, best_index=best, weights=resolved.weights,
        best_rewards=rewards[rows, best], best_raw_scores=raw[rows, best],
        best_normalized_scores=normed[rows, best], weight_source=resolved.source, normalizer_source=norm_source,
        candidates=candidates if return_candidates else None, raw_scores=raw if return_candidates else None,
        normalized_scores=normed if return_candidates else None, rewards=rewards if return_candidates else None,
    )


def _candidates_and_weights(policy, prompts: list[Conversation], n: int, generation, progress: bool, adapter,
                            weighting: Weighting) -> tuple[list[list[str]], np.ndarray | None]:
    """Candidates [N][G] and, where generation's prefill state stands in for the adapter's encoder (a
    ``causal_lm`` adapter on this policy, see :mod:`preforch.infer.prefill`), w(x) [N, K] from it; None when
    the adapter's own pass is needed for every prompt (or no adapter is used)."""
    config = generation or GenerationConfig()
    layer = None
    if adapter is not None and weighting.needs_adapter and isinstance(policy, tuple):
        layer = prefill_layer(adapter, policy[0], policy[1], config.chat_template)
    if layer is None:
        return sample_candidates(policy, prompts, n, generation, progress), None

    if not config.do_sample:
        raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
    model, tokenizer = policy
    out = generate_with_prompt_states(model, tokenizer, prompts, dataclasses.replace(config, num_return_sequences=n),
                                      layer=layer, progress=progress)
    reuse = np.array([prefill_matches(adapter, c, prompt_token_count(tokenizer, c, config.chat_template),
                                      config.max_prompt_length) for c in prompts])
    inferred = np.empty((len(prompts), len(adapter.objectives)))  # [N, K]
    rows, rest = np.flatnonzero(reuse), np.flatnonzero(~reuse)
    if len(rows):
        inferred[rows] = adapter.predict_from_embeddings(out.prompt_states[rows]).numpy()  # MLP only
    if len(rest):
        inferred[rest] = adapter.predict_weights([prompts[i] for i in rest])
    log.info("w(x) of %d of %d prompts read from generation's prefill state", len(rows), len(prompts))
    return out.texts, inferred


def _pick_normalizer(given: Normalizer | None, adapter, raw: np.ndarray,
                     objectives: list[str]) -> tuple[Normalizer | None, str]:
    if given is not None:
        return given, "given"
    if adapter is not None:
        return adapter.normalizer, "adapter"
    if len(objectives) < 2:
        return None, "none"
    # Fixed weights without a saved normaliser: z-score over this call's candidates, so no objective
    # dominates R only because its raw scale is larger.
    return Normalizer(objectives).fit(raw.reshape(-1, raw.shape[-1])), "candidates"
