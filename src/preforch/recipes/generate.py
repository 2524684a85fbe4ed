"""`preforch generate`: read prompts, sample replies from a policy (plain, best-of-N with prompt-aware weights, or a
conditioned policy asked for the scores the weights imply), write JSONL."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preforch.adapter.model import PreferenceAdapter
from preforch.atomic import refuse_existing, write_json, write_text
from preforch.conversation import Conversation, as_conversations
from preforch.data.load import read_prompts_file
from preforch.errors import PreforchError
from preforch.infer.best_of_n import best_of_n
from preforch.infer.conditioning import CONDITIONING_NAME, Conditioning
from preforch.infer.generation import conditioned_generation, load_final_policy
from preforch.models import generation
from preforch.provenance import check_scorers, make_provenance, provenance_path, scorer_records
from preforch.recipes import next_step
from preforch.recipes.configs import GenerateJobConfig
from preforch.rewards.multi import MultiScorer
from preforch.rewards.registry import build_scorers
from preforch.weighting import check_objectives, user_vector

__all__ = ["GenerateJobConfig", "GenerateJobResult", "conditioned_records", "generate_job", "read_prompts"]

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
        adapter = PreferenceAdapter.from_pretrained(config.adapter, device=config.device)
    out = conditioned_generation(config.policy, prompts, config.weighting(), adapter, load_final_policy(config.policy),
                                 config.generation(), config.progress)

    def named(row) -> dict[str, float]:
        return {k: float(v) for k, v in zip(out.objectives, row)}

    records = [{"index": i, "prompt": p.to_messages(), "responses": r, "weights": named(w), "targets": named(t),
                "weight_source": out.weight_source}
               for i, (p, r, w, t) in enumerate(zip(prompts, out.texts, out.weights, out.targets))]
    return records, out.objectives


def run(config) -> int:
    """`preforch generate`: generate, print the records (without an output file) and a summary on stderr."""
    result = generate_job(config)
    if result.output is None:
        for rec in result.records:
            print(json.dumps(rec, ensure_ascii=False))
    what = {"best_of_n": f"best-of-{config.best_of} over {result.objectives}", "sample": "sampled",
            "conditioned": f"conditioned on {result.objectives}"}[config.chosen_strategy()]
    print(f"{len(result.records)} prompts {what} in {result.seconds:.1f} s -> {result.output or 'stdout'}"
          + (f"; every candidate -> {result.candidates_output}" if result.candidates_output else ""), file=sys.stderr)
    if result.candidates_output:
        default = result.candidates_output == "runs/generate/candidates.jsonl" and config.adapter == "runs/example"
        next_step("preforch evaluate responses --config configs/evaluate_responses.yaml"
                  + ("" if default else f" --responses {result.candidates_output}"
                     + (f" --adapter {config.adapter}" if config.adapter else " --adapter null")), file=sys.stderr)
    return 0
