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
from typing import Any, Literal

import numpy as np

from preforch.config import field
from preforch.conversation import Conversation, as_conversations
from preforch.errors import PreforchError
from preforch.models.generation import DType, GenerationConfig
from preforch.rewards.normalize import Normalizer
from preforch.rewards.scorer import Scorer
from preforch.weighting import (
    Weighting,
    WeightMode,
    check_objectives,
    choose_best,
    resolve_weights,
    scalarize,
    user_vector,
)

log = logging.getLogger(__name__)

GenerateStrategy = Literal["sample", "best_of_n", "conditioned"]
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


def score_candidates(scorer: Scorer, prompts: list, candidates: list[list[str]]) -> np.ndarray:
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


def sample_candidates(policy, prompts: list, n: int, generation=None, progress: bool = False) -> list[list[str]]:
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


def best_of_n(prompts: list, policy, scorer: Scorer, n: int, *, adapter=None, weighting: Weighting | None = None,
              normalizer: Normalizer | None = None, generation=None, return_candidates: bool = False,
              progress: bool = False) -> BestOfNResult:
    """Sample ``n`` replies per prompt and keep the one with the highest R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

    ``prompts``: conversations (or texts / message lists). ``weighting`` says where w comes from (default: the
    adapter's w(x)); see :class:`preforch.weighting.Weighting`. The normaliser is ``normalizer`` if given, else
    the adapter's, else a z-score fitted on this call's candidates (so fixed weights act on comparable scales).
    ``generation`` is a GenerationConfig.
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
    raw = score_candidates(scorer, prompts, candidates)  # [N, G, K]
    norm, norm_source = _pick_normalizer(normalizer, adapter, raw, objectives)
    normed, rewards, best = rank_candidates(raw, resolved.weights, norm)  # [N, G, K], [N, G], [N]
    rows = np.arange(len(prompts))
    return BestOfNResult(
        prompts=prompts, objectives=objectives, n=n,
        responses=[candidates[i][j] for i, j in enumerate(best)], best_index=best, weights=resolved.weights,
        best_rewards=rewards[rows, best], best_raw_scores=raw[rows, best],
        best_normalized_scores=normed[rows, best], weight_source=resolved.source, normalizer_source=norm_source,
        candidates=candidates if return_candidates else None, raw_scores=raw if return_candidates else None,
        normalized_scores=normed if return_candidates else None, rewards=rewards if return_candidates else None,
    )


def _candidates_and_weights(policy, prompts: list[Conversation], n: int, generation, progress: bool, adapter,
                            weighting: Weighting) -> tuple[list[list[str]], np.ndarray | None]:
    """Candidates [N][G] and, where generation's prefill state stands in for the adapter's encoder (a
    ``causal_lm`` adapter on this policy, see :mod:`preforch.align.prefill`), w(x) [N, K] from it; None when
    the adapter's own pass is needed for every prompt (or no adapter is used)."""
    from preforch.align.prefill import prefill_layer, prefill_matches, prompt_token_count

    config = generation or GenerationConfig()
    layer = None
    if adapter is not None and weighting.needs_adapter and isinstance(policy, tuple):
        layer = prefill_layer(adapter, policy[0], policy[1], config.chat_template)
    if layer is None:
        return sample_candidates(policy, prompts, n, generation, progress), None
    from preforch.models.generation import generate_with_prompt_states

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


# ---- the `preforch generate` job ---------------------------------------------------------------------------


@dataclass
class GenerateJobConfig(GenerationConfig):
    """Settings of `preforch generate`: plain sampling, best-of-N with prompt-aware weights, or a conditioned
    policy asked for the scores the weights imply."""

    strategy: GenerateStrategy | None = field(None, help="sample, best_of_n (needs best_of) or conditioned (a policy "
                                                         "folder written by `preforch align conditioned`, tagged "
                                                         "with desired scores from the weights); null = best_of_n "
                                                         "when best_of is set, else sample")
    policy: str = field("embedded:smollm2", help="policy: embedded:smollm2, a local folder, or a hub name (online only)")
    dtype: DType = field("float32", help="policy dtype")
    device: str = field("cpu", help="torch device of the policy, the scorers and the adapter")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder and the adapter's "
                                                "encoder folder (only if you trust them; an artifact cannot allow it)")
    prompts: list[str] = field([], help="prompts given inline (YAML list, or --prompts P1 P2 ...); each is one "
                                        "user turn (or HH dialogue text)")
    prompts_file: str | None = field(None, help="prompts file: .txt (one per line) or a table with a 'prompt' "
                                                 "(text or message list) or 'messages' column "
                                                 "(.jsonl/.json/.parquet/.csv, optionally .gz)")
    limit: int | None = field(None, help="use only the first LIMIT prompts")
    best_of: int | None = field(None, help="best-of-N: sample N >= 2 replies per prompt and keep the best by "
                                           "R = sum_k w_k s~_k; null = plain sampling")
    scorers: list[dict] = field([{"type": "builtin"}], help="best-of-N scorer specs (as in `preforch score`)")
    score_batch_size: int = field(64, help="candidates per scoring batch")
    adapter: str | None = field(None, help="adapter folder: per-prompt weights w(x) and its saved normaliser")
    weight_mode: WeightMode | None = field(None, help="best-of-N weights: adapter, fixed (user_weights) or blend; "
                                           "null = adapter without user_weights, fixed with them, blend with them "
                                           "and a blend")
    user_weights: list[float] | dict[str, float] | None = field(None, help="the user's weights, one per objective "
                                                                           "in the scorers' order (conditioned: the "
                                                                           "adapter's, or the tags' without one) or "
                                                                           "{objective: w}")
    blend: float | None = field(None, help="mode blend: lambda in lambda*user_weights + (1-lambda)*w(x); null = 0.5")
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
        strategy = self.chosen_strategy()
        if strategy == "best_of_n" and self.best_of is None:
            raise PreforchError("generate: strategy best_of_n needs --best-of N")
        if strategy != "best_of_n" and self.best_of is not None:
            raise PreforchError(f"generate: best_of applies to strategy best_of_n, not {strategy}")
        if strategy == "sample" and (self.adapter or self.user_weights or self.blend is not None or self.weight_mode):
            raise PreforchError("generate: adapter, weight_mode, user_weights and blend only apply with best_of N "
                                "or strategy conditioned")
        if strategy != "best_of_n" and self.all_candidates:
            raise PreforchError("generate: all_candidates only applies with best_of N")
        if strategy == "best_of_n" and not self.do_sample:
            raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
        if strategy != "sample":
            weighting = self.weighting()
            if weighting.needs_adapter and not self.adapter:
                raise PreforchError(f"{strategy} with weight mode {weighting.mode!r} needs --adapter DIR (or give "
                                    "--user-weights w1,w2,... for fixed weights)")
        if self.output and not self.output.endswith(".jsonl"):
            raise PreforchError(f"{self.output}: output must be a .jsonl file")
        if self.limit is not None and self.limit < 1:
            raise PreforchError(f"generate: limit must be >= 1, got {self.limit}")
        from preforch.models.paths import check_device

        check_device(self.device, "generate: device")

    def chosen_strategy(self) -> str:
        return self.strategy or ("best_of_n" if self.best_of is not None else "sample")

    def weighting(self) -> Weighting:
        try:
            return Weighting.infer(self.weight_mode, self.user_weights, self.blend)
        except PreforchError as err:
            raise PreforchError(f"generate: {err}") from None

    def generation(self) -> GenerationConfig:
        return GenerationConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GenerationConfig)})


@dataclass
class GenerateJobResult:
    """What `preforch generate` wrote: one record per prompt, the objectives (best-of-N) and timing."""

    records: list[dict[str, Any]]
    objectives: list[str]
    output: str | None
    seconds: float


def read_prompts(config: GenerateJobConfig) -> list[Conversation]:
    """Inline prompts followed by the prompts file's, cut to ``limit``."""
    from preforch.data.load import read_prompts_file

    prompts = as_conversations(config.prompts) + (read_prompts_file(config.prompts_file) if config.prompts_file else [])
    if not prompts:
        raise PreforchError(f"{config.prompts_file or 'prompts'}: no prompts found")
    return prompts[: config.limit] if config.limit else prompts


def generate_job(config: GenerateJobConfig) -> GenerateJobResult:
    """Plain sampling, or best-of-N scored by the configured scorers; writes JSONL when ``output`` is set."""
    import time

    from preforch.atomic import refuse_existing
    from preforch.models.generation import generate_with_config, load_policy

    if config.output:
        refuse_existing(config.output, config.overwrite, "file")
    prompts = read_prompts(config)
    if config.chosen_strategy() == "conditioned":
        from preforch.align.conditioned import conditioned_records

        start = time.perf_counter()
        records, objectives = conditioned_records(config, prompts)
        return _finish_job(config, records, objectives, time.perf_counter() - start)
    scorer, adapter, objectives = None, None, []
    if config.best_of is not None:  # load and check scorers/adapter before the slow generation
        from preforch.rewards.multi import MultiScorer
        from preforch.rewards.pipeline import build_scorers

        scorer = MultiScorer(build_scorers(config.scorers, device=config.device), batch_size=config.score_batch_size,
                             progress=config.progress)
        objectives = list(scorer.objectives)
        if config.adapter:
            from preforch.adapter import PreferenceAdapter

            adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device,
                                                        trust_remote_code=config.trust_remote_code)
            check_objectives(objectives, adapter.objectives, f"adapter {config.adapter}")
        if config.user_weights is not None:
            user_vector(config.user_weights, objectives, "user_weights")
    policy = load_policy(config.policy, config.dtype, config.device, config.trust_remote_code)
    start = time.perf_counter()
    if config.best_of is None:
        replies = generate_with_config(policy.model, policy.tokenizer, prompts, config.generation(),
                                       progress=config.progress)  # [N][G]
        records = [{"index": i, "prompt": p.to_messages(), "responses": r}
                   for i, (p, r) in enumerate(zip(prompts, replies))]
    else:
        result = best_of_n(prompts, policy, scorer, config.best_of, adapter=adapter, weighting=config.weighting(),
                           generation=config.generation(), return_candidates=config.all_candidates,
                           progress=config.progress)
        records = [{"index": i, **rec} for i, rec in enumerate(result.to_records())]
    return _finish_job(config, records, objectives, time.perf_counter() - start)


def _finish_job(config: GenerateJobConfig, records: list[dict], objectives: list[str],
                seconds: float) -> GenerateJobResult:
    import json

    from preforch.atomic import write_text

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if config.output:
        write_text(config.output, text)
    return GenerateJobResult(records, objectives, config.output, seconds)
