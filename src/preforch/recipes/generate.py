"""`preforch generate`: read prompts, sample replies from a policy (plain, best-of-N with prompt-aware weights, or a
conditioned policy asked for the scores the weights imply), write JSONL."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from preforch.atomic import refuse_existing, write_json, write_text
from preforch.config import field
from preforch.conversation import Conversation, as_conversations
from preforch.data.load import read_prompts_file
from preforch.errors import PreforchError
from preforch.infer.best_of_n import best_of_n
from preforch.infer.conditioning import (
    CONDITIONING_NAME,
    Conditioning,
    conditioned_generation,
    load_final_policy,
)
from preforch.infer.floor import FloorSettings
from preforch.models import generation
from preforch.models.generation import GenerationConfig
from preforch.models.paths import check_device
from preforch.provenance import check_scorers, make_provenance, provenance_path, scorer_records
from preforch.rewards.multi import MultiScorer
from preforch.types import PolicyDType
from preforch.weighting import Weighting, WeightMode, check_objectives, user_vector

__all__ = ["GenerateJobConfig", "GenerateJobResult", "conditioned_records", "generate_job", "read_prompts"]

GenerateStrategy = Literal["sample", "best_of_n", "conditioned"]


@dataclass
class GenerateJobConfig(GenerationConfig, FloorSettings):
    """Settings of `preforch generate`: plain sampling, best-of-N with prompt-aware weights, or a conditioned
    policy asked for the scores the weights imply."""

    strategy: GenerateStrategy | None = field(None, help="sample, best_of_n (needs best_of) or conditioned (a policy "
                                                         "folder written by `preforch align conditioned`, tagged "
                                                         "with desired scores from the weights); null = best_of_n "
                                                         "when best_of is set, else sample")
    policy: str = field("embedded:smollm2", help="policy: embedded:smollm2, a local folder, or a hub name (online only)")
    dtype: PolicyDType = field("float32", help="policy dtype")
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
    allow_scorer_mismatch: bool = field(False, help="best-of-N with scorers other than the ones the adapter was "
                                                    "trained with (its provenance.json); logged. Off: refused")
    weight_mode: WeightMode | None = field(None, help="best-of-N weights: adapter, fixed (user_weights) or blend; "
                                           "null = adapter without user_weights, fixed with them, blend with them "
                                           "and a blend")
    user_weights: list[float] | dict[str, float] | None = field(None, help="the user's weights, one per objective "
                                                                           "in the scorers' order (conditioned: the "
                                                                           "adapter's, or the tags' without one) or "
                                                                           "{objective: w}")
    blend: float | None = field(None, help="mode blend: lambda in lambda*user_weights + (1-lambda)*w(x); null = 0.5")
    fallback: str | list[float] | dict[str, float] = field(
        "off", help="the calibrated fallback (1-lambda(x))*w(x) + lambda(x)*w_default on prompts the adapter is unsure "
                    "of: off | on (w_default: user_weights in mode blend, else the adapter's training-mean weights) | "
                    "uniform | default weights")
    all_candidates: bool = field(False, help="best-of-N: also write every candidate with its scores and R")
    output: str | None = field(None, help="JSONL output file; null = print to stdout")
    candidates_output: str | None = field(None, help="best-of-N: also write every candidate as one row (prompt, "
                                          "response, score.<objective>, candidate), the input of `preforch evaluate "
                                          "responses`; a .jsonl file")
    overwrite: bool = field(False, help="replace existing output files")
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
        if strategy != "best_of_n" and (self.all_candidates or self.candidates_output):
            raise PreforchError("generate: all_candidates and candidates_output only apply with best_of N")
        if strategy == "best_of_n" and not self.do_sample:
            raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
        if strategy != "sample":
            weighting = self.weighting()
            if weighting.needs_adapter and not self.adapter:
                raise PreforchError(f"{strategy} with weight mode {weighting.mode!r} needs --adapter DIR (or give "
                                    "--user-weights w1,w2,... for fixed weights)")
        for name in ("output", "candidates_output"):
            path = getattr(self, name)
            if path and not path.endswith(".jsonl"):
                raise PreforchError(f"{path}: {name} must be a .jsonl file")
        if self.output and self.output == self.candidates_output:
            raise PreforchError(f"{self.output}: output and candidates_output must be different files")
        if self.limit is not None and self.limit < 1:
            raise PreforchError(f"generate: limit must be >= 1, got {self.limit}")
        check_device(self.device, "generate: device")
        if self.floor and strategy != "best_of_n":
            raise PreforchError(f"generate: floor applies to strategy best_of_n, not {strategy}")
        try:
            self.floor_rule()
        except PreforchError as err:
            raise PreforchError(f"generate: {err}") from None

    def chosen_strategy(self) -> str:
        return self.strategy or ("best_of_n" if self.best_of is not None else "sample")

    def weighting(self) -> Weighting:
        try:
            return Weighting.infer(self.weight_mode, self.user_weights, self.blend, self.fallback)
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
    candidates_output: str | None = None


def read_prompts(config: GenerateJobConfig) -> list[Conversation]:
    """Inline prompts followed by the prompts file's, cut to ``limit``."""
    prompts = as_conversations(config.prompts) + (read_prompts_file(config.prompts_file) if config.prompts_file else [])
    if not prompts:
        raise PreforchError(f"{config.prompts_file or 'prompts'}: no prompts found")
    return prompts[: config.limit] if config.limit else prompts


def generate_job(config: GenerateJobConfig) -> GenerateJobResult:
    """Plain sampling, or best-of-N scored by the configured scorers; writes JSONL when ``output`` is set."""
    for path in (config.output, config.candidates_output):
        if path:
            refuse_existing(path, config.overwrite, "file")
    prompts = read_prompts(config)
    if config.chosen_strategy() == "conditioned":
        start = time.perf_counter()
        records, objectives = conditioned_records(config, prompts)
        return _finish_job(config, records, objectives, time.perf_counter() - start)
    scorer, adapter, objectives = None, None, []
    if config.best_of is not None:  # load and check scorers/adapter before the slow generation
        from preforch.adapter.model import PreferenceAdapter  # torch loads when the job runs
        from preforch.rewards.registry import build_scorers

        scorers = build_scorers(config.scorers, device=config.device)
        scorer = MultiScorer(scorers, batch_size=config.score_batch_size, progress=config.progress)
        objectives = list(scorer.objectives)
        if config.adapter:
            adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device,
                                                        trust_remote_code=config.trust_remote_code)
            check_objectives(objectives, adapter.objectives, f"adapter {config.adapter}")
            check_scorers(config.adapter, config.scorers, scorers, "generate", config.allow_scorer_mismatch)
        if config.user_weights is not None:
            user_vector(config.user_weights, objectives, "user_weights")
    policy = load_any_policy(config)
    start = time.perf_counter()
    if config.best_of is None:
        replies = generation.generate_with_config(policy.model, policy.tokenizer, prompts, config.generation(),
                                                  progress=config.progress)  # [N][G]
        records = [{"index": i, "prompt": p.to_messages(), "responses": r}
                   for i, (p, r) in enumerate(zip(prompts, replies))]
    else:
        result = best_of_n(prompts, policy, scorer, config.best_of, adapter=adapter, weighting=config.weighting(),
                           generation=config.generation(),
                           return_candidates=config.all_candidates or bool(config.candidates_output),
                           progress=config.progress, floor=config.floor_rule())
        records = [{"index": i, **rec} for i, rec in enumerate(result.to_records())]
        if not config.all_candidates:
            for rec in records:
                rec.pop("candidates", None)
        if config.candidates_output:
            rows = candidate_rows(result)
            write_text(config.candidates_output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            # what made the score columns, for `preforch evaluate responses` to check against an adapter (issue 25)
            write_json(provenance_path(config.candidates_output),
                       make_provenance(scorer_records(config.scorers, scorers), config.prompts_file or "prompts",
                                       len(rows)))
    return _finish_job(config, records, objectives, time.perf_counter() - start)


def load_any_policy(config: GenerateJobConfig):
    """The policy: a model folder, the embedded SmolLM2, a hub name, or the ``final/`` folder of a LoRA
    `preforch align` run (merged onto its base model)."""
    if config.policy and (Path(config.policy) / "adapter_config.json").is_file():
        return load_final_policy(Path(config.policy), trust_remote_code=config.trust_remote_code)
    return generation.load_policy(config.policy, config.dtype, config.device, config.trust_remote_code)


def candidate_rows(result) -> list[dict[str, Any]]:
    """Every candidate of a best-of-N result as one row: prompt (messages), response, raw score.<objective>
    and its index; the shape `preforch evaluate responses` reads (several rows per prompt)."""
    rows = []
    for i, prompt in enumerate(result.prompts):
        messages = prompt.to_messages()
        for j, text in enumerate(result.candidates[i]):
            rows.append({"prompt": messages, "response": text, "candidate": j,
                         **{f"score.{o}": float(v) for o, v in zip(result.objectives, result.raw_scores[i, j])}})
    return rows


def _finish_job(config: GenerateJobConfig, records: list[dict], objectives: list[str],
                seconds: float) -> GenerateJobResult:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if config.output:
        write_text(config.output, text)
    return GenerateJobResult(records, objectives, config.output, seconds, config.candidates_output)


def conditioned_records(config: GenerateJobConfig, prompts: list[Conversation]) -> tuple[list[dict], list[str]]:
    """`preforch generate --strategy conditioned`: one JSON-ready record per prompt (replies, the weights and
    the desired scores put in the tags), and the tags' objectives."""
    Conditioning.load(Path(config.policy) / CONDITIONING_NAME)  # fail before any model loads
    adapter = None
    if config.adapter:
        from preforch.adapter.model import PreferenceAdapter  # torch loads when the job runs

        adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device)
    out = conditioned_generation(config.policy, prompts, config.weighting(), adapter, load_final_policy(config.policy),
                                 config.generation(), config.progress)

    def named(row) -> dict[str, float]:
        return {k: float(v) for k, v in zip(out.objectives, row)}

    records = [{"index": i, "prompt": p.to_messages(), "responses": r, "weights": named(w), "targets": named(t),
                "weight_source": out.weight_source}
               for i, (p, r, w, t) in enumerate(zip(prompts, out.texts, out.weights, out.targets))]
    return records, out.objectives
