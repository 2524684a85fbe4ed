"""`preforch align conditioned`: Rewards-in-Context (Yang et al. 2024) with prompt-aware desired scores.

Training: each response's normalised scores are appended to its prompt as tags, and the policy is fine-tuned
(TRL SFTTrainer, loss on the response only) to continue a tagged prompt with that response. Generation with the
trained policy (tags from w(x)) lives in :mod:`preforch.infer.conditioning`, shared with the server.
"""

from __future__ import annotations

import time

import numpy as np
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from preforch.align.config import ConditionedJob
from preforch.align.data import (
    fit_prompt,
    has_chat_template,
    policy_completion,
    policy_prompt,
    preference_of,
    preference_rows,
    read_rows,
)
from preforch.align.grpo import AlignResult
from preforch.align.runs import (
    FINAL_DIR,
    base_report,
    complete_checkpoint_callback,
    load_parts,
    lora_config,
    prepare_run_dir,
    save_final,
    trl_args,
    use_lora,
)
from preforch.atomic import write_json
from preforch.conversation import Conversation
from preforch.errors import PreforchError
from preforch.infer.conditioning import CONDITIONING_NAME, Conditioning, tag_prompt


def _training_examples(job: ConditionedJob, parts, rows, source) -> tuple[list[Conversation], list[str], np.ndarray]:
    """Prompts, responses and their normalised scores ([M, K]); existing score columns are used when they match."""
    data = preference_rows(rows, source, job.prompt_column)
    use_rejected = job.use_rejected and data.rejected is not None
    prompts = data.prompts + (data.prompts if use_rejected else [])
    responses = data.chosen + ((data.rejected or []) if use_rejected else [])
    given = (data.objectives == parts.objectives and data.scores_chosen is not None
             and (not use_rejected or data.scores_rejected is not None))
    if given:
        raw = np.vstack([data.scores_chosen, data.scores_rejected]) if use_rejected else data.scores_chosen
    else:
        raw = np.asarray(parts.scorer.score(prompts, responses), dtype=np.float64)  # [M, K]
    return prompts, responses, parts.normalizer.transform(raw).astype(np.float64)


def conditioned_rows(prompts: list[Conversation], responses: list[str], scores: np.ndarray, objectives: list[str],
                     decimals: int, chat: bool, fit=None) -> dict[str, list]:
    """The SFT rows: each prompt tagged with its own response's normalised scores [M, K] (then cut by ``fit``, which
    keeps the end, so the tags stay), and that response."""
    return {
        "prompt": [policy_prompt((fit or (lambda c: c))(tag_prompt(p, objectives, s, decimals)), chat)
                   for p, s in zip(prompts, scores)],
        "completion": [policy_completion(r, chat) for r in responses],
    }


def run_conditioned(job: ConditionedJob, scorer=None, adapter=None, policy=None, callbacks=None) -> AlignResult:
    """Tag, fine-tune with SFT, save output_dir/final with conditioning.json (the tag format and mapping)."""
    resume_from = prepare_run_dir(job)
    parts = load_parts(job, scorer=scorer, adapter=adapter, policy=policy)
    rows, source = read_rows(job, lambda row, where: preference_of(row, job.prompt_column, where))
    if "chosen" not in rows[0] and "messages" not in rows[0]:
        raise PreforchError(f"{source}: conditioned training needs responses: a 'chosen' column (or 'messages'); "
                            f"columns are {list(rows[0])} (--chosen-column names another)")
    prompts, responses, scores = _training_examples(job, parts, rows, source)
    conditioning = Conditioning(parts.objectives, job.tag_decimals, job.tag_mapping,
                                np.quantile(scores, job.tag_low_quantile, axis=0).round(4).tolist(),
                                np.quantile(scores, job.tag_high_quantile, axis=0).round(4).tolist())
    chat = has_chat_template(parts.tokenizer)
    dataset = Dataset.from_dict(conditioned_rows(prompts, responses, scores, parts.objectives, job.tag_decimals, chat,
                                                 lambda c: fit_prompt(c, parts.tokenizer, job.max_prompt_length, chat)))
    extra = {"num_train_epochs": job.num_train_epochs, "max_steps": -1} if job.num_train_epochs else {}
    args = SFTConfig(**trl_args(job, **extra, max_length=job.max_length, completion_only_loss=True))
    parts.tokenizer.padding_side = "right"
    trainer = SFTTrainer(model=parts.model, args=args, train_dataset=dataset, processing_class=parts.tokenizer,
                         peft_config=lora_config(job) if use_lora(job, parts.embedded) else None,
                         callbacks=[complete_checkpoint_callback(job.config_hash()), *(callbacks or [])])
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    report = base_report(job, parts, trainer, "conditioned", {
        "examples": len(responses), "resumed_from": resume_from, "train_seconds": seconds,
        "conditioning": conditioning.to_dict(),
    })
    final = save_final(trainer, job, report)
    write_json(final / CONDITIONING_NAME, conditioning.to_dict())
    return AlignResult(final, report, trainer, seconds)


__all__ = ["FINAL_DIR", "conditioned_rows", "run_conditioned"]
