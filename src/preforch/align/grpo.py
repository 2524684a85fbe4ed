"""`preforch align grpo|rloo`: TRL's GRPOTrainer / RLOOTrainer on R(x, y) = Σ_k w_k(x)·s̃_k(x, y).

One combined reward function (:class:`~preforch.align.rewards.ScalarizedReward`) reads each prompt's weights from
the ``pro_weights`` column. GRPO's ``normalize_then_sum`` would standardise each reward function inside a
prompt's group and cancel a per-prompt weight if the objectives were separate reward functions; with one combined
function the weights act before any group statistics, and ``sum_then_normalize`` (our default) keeps it so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from preforch.align.config import GRPOJob, RLOOJob
from preforch.align.data import (
    fit_prompt,
    has_chat_template,
    policy_prompt,
    prompt_of,
    prompts_from_rows,
    read_rows,
)
from preforch.align.rewards import (
    CONFIDENCE_COLUMN,
    CONVERSATION_COLUMN,
    LAMBDA_COLUMN,
    WEIGHTS_COLUMN,
    ScalarizedReward,
)
from preforch.align.runs import (
    RunParts,
    base_report,
    complete_checkpoint_callback,
    load_parts,
    lora_config,
    prepare_run_dir,
    save_final,
    trl_args,
    use_lora,
)
from preforch.conversation import Conversation, as_conversations
from preforch.errors import PreforchError
from preforch.weighting import resolve_weights

log = logging.getLogger(__name__)


@dataclass
class AlignResult:
    """A finished training run. ``final_dir``: the saved policy; ``report``: what align_report.json holds."""

    final_dir: Path
    report: dict
    trainer: object
    seconds: float


def build_prompt_dataset(prompts: list[Conversation], weights: np.ndarray, chat: bool,
                         confidence: np.ndarray | None = None, lam: np.ndarray | None = None,
                         policy_prompts: list[Conversation] | None = None):
    """Rows TRL trains on: prompt (messages or text; ``policy_prompts`` when given, the prompts cut to what the
    policy reads), pro_conversation (the whole prompt, which the reward models score), pro_weights, and
    pro_confidence / pro_lambda when known. Shapes: weights [N, K]; confidence, lam [N]."""
    columns = {
        "prompt": [policy_prompt(p, chat) for p in policy_prompts or prompts],
        CONVERSATION_COLUMN: [p.key() for p in prompts],
        WEIGHTS_COLUMN: [[float(v) for v in row] for row in weights],
    }
    for name, values in ((CONFIDENCE_COLUMN, confidence), (LAMBDA_COLUMN, lam)):
        if values is not None:
            columns[name] = [float(v) for v in values]
    return Dataset.from_dict(columns)


def _trainer_class(job: GRPOJob):
    if isinstance(job, RLOOJob):
        return RLOOTrainer, RLOOConfig, {"normalize_advantages": job.normalize_advantages}

    return GRPOTrainer, GRPOConfig, {"loss_type": job.loss_type, "scale_rewards": job.scale_rewards,
                                     "multi_objective_aggregation": job.aggregation}


def _check_batch(job: GRPOJob) -> None:
    total = job.per_device_train_batch_size * job.gradient_accumulation_steps
    if total % job.num_generations:
        raise PreforchError(f"{type(job).__name__}: per_device_train_batch_size x gradient_accumulation_steps "
                            f"({total}) must be a multiple of num_generations ({job.num_generations})")


def run_rl(job: GRPOJob, scorer=None, adapter=None, policy=None, callbacks=None,
           prompts: list | None = None) -> AlignResult:
    """Train with GRPO (a GRPOJob) or RLOO (an RLOOJob); returns where the policy went and the report.

    ``scorer`` / ``adapter`` / ``policy`` (a (model, tokenizer) pair) / ``prompts`` override what the config
    names (tests and benchmarks pass objects).
    """
    _check_batch(job)
    resume_from = prepare_run_dir(job)
    parts: RunParts = load_parts(job, scorer=scorer, adapter=adapter, policy=policy)
    if prompts is None:
        rows, source = read_rows(job, lambda row, where: prompt_of(row, job.prompt_column, where))
        prompts = prompts_from_rows(rows, job.prompt_column, source)
    prompts = as_conversations(prompts)
    resolved = resolve_weights(prompts, parts.objectives, job.weighting(), parts.adapter)
    weights = resolved.weights  # [N, K]
    chat = has_chat_template(parts.tokenizer)
    cut = [fit_prompt(p, parts.tokenizer, job.max_prompt_length, chat) for p in prompts]
    dataset = build_prompt_dataset(prompts, weights, chat, resolved.confidence, resolved.fallback, cut)
    reward = ScalarizedReward(parts.scorer, parts.normalizer)
    trainer_cls, config_cls, extra = _trainer_class(job)
    args = config_cls(**trl_args(job, num_generations=job.num_generations,
                                 max_completion_length=job.max_completion_length, temperature=job.temperature,
                                 beta=job.beta, **extra))
    parts.tokenizer.padding_side = "left"
    trainer = trainer_cls(model=parts.model, reward_funcs=reward, args=args, train_dataset=dataset,
                          processing_class=parts.tokenizer,
                          peft_config=lora_config(job) if use_lora(job, parts.embedded) else None,
                          callbacks=[complete_checkpoint_callback(job.config_hash()), *(callbacks or [])])
    route = "rloo" if isinstance(job, RLOOJob) else "grpo"
    if resume_from:
        log.info("resuming from %s", resume_from)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    report = base_report(job, parts, trainer, route, {
        "prompts": len(prompts), "resumed_from": resume_from, "train_seconds": seconds,
        "mean_weights": dict(zip(parts.objectives, weights.mean(0).round(6).tolist())),
        "mean_confidence": None if resolved.confidence is None else round(float(resolved.confidence.mean()), 6),
        "mean_lambda": None if resolved.fallback is None else round(float(resolved.fallback.mean()), 6),
    })
    final = save_final(trainer, job, report)
    return AlignResult(final, report, trainer, seconds)
