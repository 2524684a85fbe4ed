"""`preforch align dpo`: prompt-aware pair labels, then TRL's DPOTrainer.

For each prompt: its responses (chosen/rejected columns, several candidate columns, or samples from the policy)
are scored, normalised, and ranked by R = Σ_k w_k(x)·s̃_k; the best and the worst form one pair, kept only if
R(best) − R(worst) >= min_margin.

MODPO-style margin (``margin_mode: modpo``): TRL 1.16's DPO has no per-example logit offset, so a minimal
subclass shifts the precomputed reference log-prob of the chosen response by m/β. The DPO logit
β·[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))] then becomes that logit − m with
m = margin_scale·Σ_{j≠k} w_j(x)·(s̃_j(y⁺) − s̃_j(y⁻)), k = modpo_objective: the DPO term learns what the other
objectives' scores do not already explain (MODPO, Zhou et al. 2023, without its 1/w_k rescaling of β).
TRL's logged ``rewards/chosen`` and ``rewards/margins`` include the shift.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from preforch.align.config import DPOJob
from preforch.align.data import (
    candidates_from_rows,
    candidates_of,
    fit_prompt,
    has_chat_template,
    policy_completion,
    policy_prompt,
    preference_of,
    preference_rows,
    prompt_of,
    prompts_from_rows,
    read_rows,
)
from preforch.align.grpo import AlignResult
from preforch.align.runs import (
    REPORT_NAME,
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
from preforch.data.load import write_table
from preforch.errors import PreforchError
from preforch.infer.best_of_n import score_each
from preforch.models.generation import generate
from preforch.weighting import resolve_weights, scalarize

log = logging.getLogger(__name__)
PAIRS_NAME = "pairs.jsonl"


@dataclass
class PairSet:
    """Kept pairs. ``index``: source row of each pair; ``margin``: the MODPO offset (zeros without it);
    ``gap``: R(chosen) − R(rejected); ``dropped``: rows whose best pair fell below min_margin."""

    index: list[int]
    chosen: list[str]
    rejected: list[str]
    gap: list[float]
    margin: list[float]
    dropped: int


def make_pairs(candidates: list[list[str]], normalized: list[np.ndarray], weights: np.ndarray, min_margin: float,
               other_objectives: np.ndarray | None = None, margin_scale: float = 1.0) -> PairSet:
    """Best-vs-worst pair per row by R. Shapes: normalized[i] [G_i, K], weights [N, K];
    ``other_objectives`` [K] 0/1 mask of the objectives whose weighted difference is the MODPO margin."""
    out = PairSet([], [], [], [], [], 0)
    for i, (cands, s) in enumerate(zip(candidates, normalized)):
        r = scalarize(weights[i], s)  # [G_i]
        best, worst = int(np.argmax(r)), int(np.argmin(r))
        gap = float(r[best] - r[worst])
        if best == worst or gap < min_margin:
            out.dropped += 1
            continue
        margin = 0.0
        if other_objectives is not None:
            margin = margin_scale * float(scalarize(weights[i] * other_objectives, s[best] - s[worst]))
        out.index.append(i)
        out.chosen.append(cands[best])
        out.rejected.append(cands[worst])
        out.gap.append(gap)
        out.margin.append(margin)
    return out


def pairs_mode(job: DPOJob, row: dict) -> str:
    """Where the pairs come from for a row like ``row``: ``pairs_from``, or (auto) candidate columns when set,
    chosen/rejected columns when the row has both, else sampling from the policy."""
    if job.pairs_from != "auto":
        return job.pairs_from
    has_pair = "chosen" in row and ("rejected" in row or "prompt" not in row)
    return "candidates" if job.candidate_columns else "columns" if has_pair and "rejected" in row else "sample"


def require_pair_columns(row: dict, where: str) -> None:
    """Refuse a row without both response columns that pairs_from 'columns' reads."""
    missing = [c for c in ("chosen", "rejected") if c not in row]
    if missing:
        raise PreforchError(f"{where}: pairs_from 'columns' needs columns 'chosen' and 'rejected'; missing "
                            f"{missing} (columns are {list(row)}; --chosen-column / --rejected-column name others)")


def check_row(job: DPOJob, row: dict, where: str) -> None:
    """Refuse a row :func:`collect_candidates` could not read (``on_bad_rows`` decides what that does)."""
    mode = pairs_mode(job, row)
    if mode == "columns":
        require_pair_columns(row, where)
        preference_of(row, job.prompt_column, where)
        return
    prompt_of(row, job.prompt_column, where)
    if mode == "candidates":
        candidates_of(row, job.candidate_columns, where)


def collect_candidates(job: DPOJob, rows, source: str, parts) -> tuple[list, list[list[str]]]:
    """Prompts and their candidate responses, from the source ``pairs_from`` picks. Shape: [N], [N][G]."""
    mode = pairs_mode(job, rows[0])
    if mode == "columns":
        require_pair_columns(rows[0], source)
        data = preference_rows(rows, source, job.prompt_column)
        return data.prompts, [[c, r] for c, r in zip(data.chosen, data.rejected or [])]
    prompts = prompts_from_rows(rows, job.prompt_column, source)
    if mode == "candidates":
        return prompts, candidates_from_rows(rows, job.candidate_columns, source)

    samples = generate(parts.model, parts.tokenizer, prompts, max_new_tokens=job.sample_max_new_tokens,
                       num_return_sequences=job.num_samples, temperature=job.sample_temperature, seed=job.seed,
                       chat_template=has_chat_template(parts.tokenizer), progress=job.progress)
    return prompts, samples


def normalized_candidate_scores(prompts: list, candidates: list[list[str]], scorer, normalizer) -> list[np.ndarray]:
    """Normalised scores of every candidate, one [G_i, K] array per prompt (one scorer call for all)."""
    raw = score_each(scorer, prompts, candidates)  # N × [G_i, K]
    s = normalizer.transform(np.concatenate(raw)).astype(np.float64)  # [sum G_i, K]
    return np.split(s, np.cumsum([len(c) for c in candidates])[:-1])


def _modpo_trainer_class():
    class MarginDPOTrainer(DPOTrainer):
        """DPOTrainer whose precomputed reference log-probs of the chosen responses are shifted by margin/β,
        which subtracts the margin from the DPO logit (see the module docstring)."""

        def __init__(self, *args, margins: list[float], **kwargs) -> None:
            self._pro_margins = list(margins)
            super().__init__(*args, **kwargs)

        def _precompute_ref_logps(self, dataset, name, batch_size):
            out = super()._precompute_ref_logps(dataset, name, batch_size)
            if name != "train":
                return out
            if len(out) != len(self._pro_margins):
                raise PreforchError(f"modpo: {len(out)} training rows but {len(self._pro_margins)} margins")
            shifted = [float(v) + m / self.beta for v, m in zip(out["ref_chosen_logps"], self._pro_margins)]
            return out.remove_columns("ref_chosen_logps").add_column("ref_chosen_logps", shifted)

    return MarginDPOTrainer


def run_dpo(job: DPOJob, scorer=None, adapter=None, policy=None, callbacks=None) -> AlignResult:
    """Label pairs by R, write them to output_dir/pairs.jsonl, train DPO, save output_dir/final."""
    resume_from = prepare_run_dir(job)
    parts = load_parts(job, scorer=scorer, adapter=adapter, policy=policy)
    rows, source = read_rows(job, lambda row, where: check_row(job, row, where))
    prompts, candidates = collect_candidates(job, rows, source, parts)
    weights = resolve_weights(prompts, parts.objectives, job.weighting(), parts.adapter).weights  # [N, K]
    normalized = normalized_candidate_scores(prompts, candidates, parts.scorer, parts.normalizer)
    others = None
    if job.margin_mode == "modpo":
        if job.modpo_objective not in parts.objectives:
            raise PreforchError(f"dpo: modpo_objective {job.modpo_objective!r} is not one of {parts.objectives}")
        others = np.array([o != job.modpo_objective for o in parts.objectives], dtype=np.float64)  # [K]
    pairs = make_pairs(candidates, normalized, weights, job.min_margin, others, job.margin_scale)
    if not pairs.index:
        raise PreforchError(f"{source}: no pairs left: the margin filter (min_margin={job.min_margin}) dropped all "
                            f"{pairs.dropped} of {len(prompts)} prompts' pairs; lower min_margin or add responses")
    log.info("dpo: %d pairs kept, %d dropped by min_margin=%s", len(pairs.index), pairs.dropped, job.min_margin)
    write_table([{"prompt": prompts[i].to_messages(), "chosen": c, "rejected": r, "gap": g, "margin": m,
                  "weights": weights[i].tolist()}
                 for i, c, r, g, m in zip(pairs.index, pairs.chosen, pairs.rejected, pairs.gap, pairs.margin)],
                Path(job.output_dir) / PAIRS_NAME)
    chat = has_chat_template(parts.tokenizer)
    dataset = Dataset.from_dict({
        "prompt": [policy_prompt(fit_prompt(prompts[i], parts.tokenizer, job.max_prompt_length, chat), chat)
                   for i in pairs.index],
        "chosen": [policy_completion(c, chat) for c in pairs.chosen],
        "rejected": [policy_completion(r, chat) for r in pairs.rejected],
    })
    args = DPOConfig(**trl_args(job, beta=job.beta, max_length=job.max_length,
                                precompute_ref_log_probs=job.margin_mode == "modpo"))
    kwargs = dict(model=parts.model, args=args, train_dataset=dataset, processing_class=parts.tokenizer,
                  peft_config=lora_config(job) if use_lora(job, parts.embedded) else None,
                  callbacks=[complete_checkpoint_callback(job.config_hash()), *(callbacks or [])])
    parts.tokenizer.padding_side = "right"
    if job.margin_mode == "modpo":
        trainer = _modpo_trainer_class()(**kwargs, margins=pairs.margin)
    else:
        trainer = DPOTrainer(**kwargs)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    report = base_report(job, parts, trainer, "dpo", {
        "prompts": len(prompts), "pairs": len(pairs.index), "dropped": pairs.dropped, "resumed_from": resume_from,
        "train_seconds": seconds, "mean_gap": float(np.mean(pairs.gap)), "mean_margin": float(np.mean(pairs.margin)),
    })
    final = save_final(trainer, job, report)
    write_json(Path(job.output_dir) / REPORT_NAME, {k: v for k, v in report.items() if k != "log_history"})
    return AlignResult(final, report, trainer, seconds)
