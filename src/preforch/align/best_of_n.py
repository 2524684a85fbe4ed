"""Best-of-N with prompt-aware weights: sample G ≥ 2 replies per prompt, score them on K objectives,
normalise, weight with w(x) (the adapter's, the user's, or a blend) and keep the reply with the highest
R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

The pure core (:func:`choose_best`, :func:`rank_candidates`, :func:`resolve_weights`) works on arrays; only
:func:`best_of_n` touches a model. No trl/peft here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from preforch.config import field
from preforch.errors import PreforchError
from preforch.models.generation import DType, GenerationConfig
from preforch.rewards.normalize import Normalizer
from preforch.rewards.scorer import Scorer
from preforch.weighting import blend_weights, check_weights, scalarize

log = logging.getLogger(__name__)

#: A policy: a (model, tokenizer) pair, or any ``fn(prompts, n) -> [N][n] texts``.
GenerateFn = Callable[[list[str], int], list[list[str]]]


class WeightSource(Protocol):
    """What best-of-N needs from a :class:`preforch.adapter.PreferenceAdapter`."""

    objectives: list[str]
    normalizer: Normalizer

    def predict_weights(self, prompts: list[str], batch_size: int = 64) -> np.ndarray: ...


@dataclass
class BestOfNResult:
    """The chosen reply per prompt, and (when asked) every candidate with its scores.

    Shapes: ``best_index`` [N]; ``weights`` [N, K]; ``best_rewards`` [N]; ``best_raw_scores`` and
    ``best_normalized_scores`` [N, K]; ``candidates`` [N][G]; ``raw_scores`` / ``normalized_scores``
    [N, G, K]; ``rewards`` [N, G]. ``weight_source``: adapter, user or blend; ``normalizer_source``:
    given, adapter, candidates (z-score fitted on this call's candidates) or none (one objective).
    """

    prompts: list[str]
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

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per prompt, scores and weights keyed by objective name."""

        def named(row) -> dict[str, float]:
            return {k: float(v) for k, v in zip(self.objectives, row)}

        records = []
        for i, prompt in enumerate(self.prompts):
            rec: dict[str, Any] = {
                "prompt": prompt, "response": self.responses[i], "best_index": int(self.best_index[i]),
                "n": self.n, "reward": float(self.best_rewards[i]), "weights": named(self.weights[i]),
                "weight_source": self.weight_source, "scores": named(self.best_raw_scores[i]),
                "normalized_scores": named(self.best_normalized_scores[i]),
            }
            if self.candidates is not None:
                rec["candidates"] = [
                    {"response": text, "reward": float(self.rewards[i, j]), "scores": named(self.raw_scores[i, j]),
                     "normalized_scores": named(self.normalized_scores[i, j])}
                    for j, text in enumerate(self.candidates[i])
                ]
            records.append(rec)
        return records


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


def check_objectives(scorer_objectives: Sequence[str], other: Sequence[str], what: str) -> None:
    if list(scorer_objectives) != list(other):
        raise PreforchError(f"{what} objectives {list(other)} differ from the scorer's objectives "
                            f"{list(scorer_objectives)} (same names in the same order are needed)")


def resolve_weights(prompts: list[str], objectives: list[str], adapter: WeightSource | None = None,
                    user_weights=None, blend: float | None = None) -> tuple[np.ndarray, str]:
    """Per-prompt weights and where they came from. Shape: [N, K].

    - adapter only: w(x) from ``adapter.predict_weights``;
    - user weights only ([K] or [N, K]): those, normalised to sum 1;
    - both: λ·w_user + (1−λ)·w(x) with λ = ``blend`` (no blend: the user's weights, λ = 1).
    """
    k, n = len(objectives), len(prompts)
    if adapter is None and user_weights is None:
        raise PreforchError("best-of-N needs weights: give an adapter, fixed weights, or both with a blend")
    if blend is not None and (adapter is None or user_weights is None):
        raise PreforchError("a blend needs both an adapter and fixed weights")
    if adapter is None:
        w = check_weights(user_weights, k, "fixed weights")
        return np.array(np.broadcast_to(w, (n, k))), "user"  # [N, K]
    lam = 1.0 if blend is None else float(blend)
    if user_weights is not None and lam == 1.0:
        return np.array(np.broadcast_to(check_weights(user_weights, k, "fixed weights"), (n, k))), "user"
    inferred = np.asarray(adapter.predict_weights(list(prompts)), dtype=np.float64)  # [N, K]
    if inferred.shape != (n, k):
        raise PreforchError(f"adapter returned weights of shape {inferred.shape}, expected {(n, k)}")
    if user_weights is None:
        return inferred, "adapter"
    return blend_weights(inferred, user_weights, lam), f"blend({lam:g})"


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


def score_candidates(scorer: Scorer, prompts: list[str], candidates: list[list[str]]) -> np.ndarray:
    """Raw scores of every candidate. Shape: [N][G] texts → [N, G, K]."""
    n, g, k = len(prompts), len(candidates[0]), len(scorer.objectives)
    flat_prompts = [p for p in prompts for _ in range(g)]
    flat = [c for row in candidates for c in row]
    raw = np.asarray(scorer.score(flat_prompts, flat), dtype=np.float64)
    if raw.shape != (n * g, k):
        raise PreforchError(f"scorer returned shape {raw.shape} for {n * g} candidates, expected {(n * g, k)}")
    bad = ~np.isfinite(raw)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"scorer gave {raw[row, col]} for prompt {row // g}, candidate {row % g}, "
                            f"objective {scorer.objectives[col]!r}")
    return raw.reshape(n, g, k)  # [N, G, K]


def sample_candidates(policy, prompts: list[str], n: int, generation=None, progress: bool = False) -> list[list[str]]:
    """``n`` replies per prompt from a (model, tokenizer) pair or a ``fn(prompts, n)``. Shape: [N][n]."""
    if callable(policy) and not isinstance(policy, tuple):
        out = policy(list(prompts), n)
    else:
        from preforch.models.generation import generate_with_config

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


def best_of_n(prompts: list[str], policy, scorer: Scorer, adapter_or_weights, n: int, *,
              user_weights=None, blend: float | None = None, normalizer: Normalizer | None = None,
              generation=None, return_candidates: bool = False, progress: bool = False) -> BestOfNResult:
    """Sample ``n`` replies per prompt and keep the one with the highest R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

    ``adapter_or_weights``: a PreferenceAdapter (per-prompt weights and its saved normaliser) or fixed
    weights [K] / [N, K]. With an adapter, ``user_weights`` and ``blend`` λ give λ·w_user + (1−λ)·w(x).
    The normaliser is ``normalizer`` if given, else the adapter's, else a z-score fitted on this call's
    candidates (so fixed weights act on comparable scales). ``generation`` is a GenerationConfig.
    """
    if isinstance(prompts, str) or not prompts:
        raise PreforchError("best-of-N: give a non-empty list of prompts")
    if n < 2:
        raise PreforchError(f"best-of-N needs N >= 2 candidates per prompt, got {n}")
    objectives = list(scorer.objectives)
    adapter = adapter_or_weights if hasattr(adapter_or_weights, "predict_weights") else None
    if adapter is None:
        if user_weights is not None:
            raise PreforchError("give fixed weights once: as adapter_or_weights or as user_weights, not both")
        user_weights = adapter_or_weights
    else:
        check_objectives(objectives, adapter.objectives, "adapter")
    if normalizer is not None:
        check_objectives(objectives, normalizer.objectives, "normalizer")
    weights, weight_source = resolve_weights(prompts, objectives, adapter, user_weights, blend)  # [N, K]

    candidates = sample_candidates(policy, prompts, n, generation, progress)  # [N][G]
    raw = score_candidates(scorer, prompts, candidates)  # [N, G, K]
    norm, norm_source = _pick_normalizer(normalizer, adapter, raw, objectives)
    normed, rewards, best = rank_candidates(raw, weights, norm)  # [N, G, K], [N, G], [N]
    rows = np.arange(len(prompts))
    return BestOfNResult(
        prompts=list(prompts), objectives=objectives, n=n,
        responses=[candidates[i][j] for i, j in enumerate(best)], best_index=best, weights=weights,
        best_rewards=rewards[rows, best], best_raw_scores=raw[rows, best],
        best_normalized_scores=normed[rows, best], weight_source=weight_source, normalizer_source=norm_source,
        candidates=candidates if return_candidates else None, raw_scores=raw if return_candidates else None,
        normalized_scores=normed if return_candidates else None, rewards=rewards if return_candidates else None,
    )


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


# ---- the `preforch generate` job ---------------------------------------------------------------------------


@dataclass
class GenerateJobConfig(GenerationConfig):
    """Settings of `preforch generate`: plain sampling, or best-of-N with prompt-aware weights."""

    policy: str = field("embedded:smollm2", help="policy: embedded:smollm2, a local folder, or a hub name (online only)")
    dtype: DType = field("float32", help="policy dtype")
    device: str = field("cpu", help="torch device of the policy, the scorers and the adapter")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder")
    prompts: list[str] = field([], help="prompts given inline (YAML list, or --prompts P1 P2 ...)")
    prompts_file: str | None = field(None, help="prompts file: .txt (one per line) or a table with a 'prompt' "
                                                 "column (.jsonl/.json/.parquet/.csv, optionally .gz)")
    limit: int | None = field(None, help="use only the first LIMIT prompts")
    best_of: int | None = field(None, help="best-of-N: sample N >= 2 replies per prompt and keep the best by "
                                           "R = sum_k w_k s~_k; null = plain sampling")
    scorers: list[dict] = field([{"type": "builtin"}], help="best-of-N scorer specs (as in `preforch score`)")
    score_batch_size: int = field(64, help="candidates per scoring batch")
    adapter: str | None = field(None, help="adapter folder: per-prompt weights w(x) and its saved normaliser")
    weights: list[float] | None = field(None, help="fixed weights, one per objective in the scorers' order")
    blend: float | None = field(None, help="with an adapter and weights: lambda*weights + (1-lambda)*w(x); "
                                           "null with both = the fixed weights, normalised by the adapter")
    all_candidates: bool = field(False, help="best-of-N: also write every candidate with its scores and R")
    output: str | None = field(None, help="JSONL output file; null = print to stdout")
    overwrite: bool = field(False, help="replace an existing output file")
    progress: bool = field(True, help="show progress bars")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.prompts and not self.prompts_file:
            raise PreforchError("generate: give prompts (--prompts ... or --prompts-file FILE)")
        if self.best_of is not None and self.best_of < 2:
            raise PreforchError(f"best-of-N needs N >= 2 candidates per prompt, got best_of {self.best_of}")
        if self.best_of is None and (self.adapter or self.weights or self.all_candidates or self.blend is not None):
            raise PreforchError("generate: adapter, weights, blend and all_candidates only apply with best_of N")
        if self.best_of is not None and not self.do_sample:
            raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
        if self.blend is not None and not (self.adapter and self.weights):
            raise PreforchError("generate: blend needs both an adapter and fixed weights")
        if self.blend is not None and not 0.0 <= self.blend <= 1.0:
            raise PreforchError(f"generate: blend must be in [0, 1], got {self.blend}")
        if self.best_of is not None and not (self.adapter or self.weights):
            raise PreforchError("best-of-N needs weights: give --adapter DIR, --weights w1,w2,..., or both")
        if self.output and not self.output.endswith(".jsonl"):
            raise PreforchError(f"{self.output}: output must be a .jsonl file")
        if self.limit is not None and self.limit < 1:
            raise PreforchError(f"generate: limit must be >= 1, got {self.limit}")

    def generation(self) -> GenerationConfig:
        return GenerationConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GenerationConfig)})


@dataclass
class GenerateJobResult:
    """What `preforch generate` wrote: one record per prompt, the objectives (best-of-N) and timing."""

    records: list[dict[str, Any]]
    objectives: list[str]
    output: str | None
    seconds: float


def read_prompts(config: GenerateJobConfig) -> list[str]:
    """Inline prompts followed by the prompts file's, cut to ``limit``."""
    from preforch.data.load import read_prompts_file

    prompts = list(config.prompts) + (read_prompts_file(config.prompts_file) if config.prompts_file else [])
    if not prompts:
        raise PreforchError(f"{config.prompts_file or 'prompts'}: no prompts found")
    return prompts[: config.limit] if config.limit else prompts


def generate_job(config: GenerateJobConfig) -> GenerateJobResult:
    """Plain sampling, or best-of-N scored by the configured scorers; writes JSONL when ``output`` is set."""
    import json
    import time

    from preforch.atomic import refuse_existing, write_text
    from preforch.models.generation import generate_with_config, load_policy

    if config.output:
        refuse_existing(config.output, config.overwrite, "file")
    prompts = read_prompts(config)
    scorer, adapter, objectives = None, None, []
    if config.best_of is not None:  # load and check scorers/adapter before the slow generation
        from preforch.rewards.multi import MultiScorer
        from preforch.rewards.pipeline import build_scorers

        scorer = MultiScorer(build_scorers(config.scorers, device=config.device), batch_size=config.score_batch_size,
                             progress=config.progress)
        objectives = list(scorer.objectives)
        if config.adapter:
            from preforch.adapter import PreferenceAdapter

            adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device)
            check_objectives(objectives, adapter.objectives, f"adapter {config.adapter}")
        if config.weights is not None:
            check_weights(config.weights, len(objectives), f"weights for objectives {objectives}")
    policy = load_policy(config.policy, config.dtype, config.device, config.trust_remote_code)
    start = time.perf_counter()
    if config.best_of is None:
        replies = generate_with_config(policy.model, policy.tokenizer, prompts, config.generation(),
                                       progress=config.progress)  # [N][G]
        records = [{"index": i, "prompt": p, "responses": r} for i, (p, r) in enumerate(zip(prompts, replies))]
    else:
        first = adapter if adapter is not None else config.weights
        result = best_of_n(prompts, policy, scorer, first, config.best_of,
                           user_weights=config.weights if adapter is not None else None, blend=config.blend,
                           generation=config.generation(), return_candidates=config.all_candidates,
                           progress=config.progress)
        records = [{"index": i, **rec} for i, rec in enumerate(result.to_records())]
    seconds = time.perf_counter() - start
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if config.output:
        write_text(config.output, text)
    return GenerateJobResult(records, objectives, config.output, seconds)
