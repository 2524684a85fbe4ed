"""What the training routes share: the run folder and its config hash, complete-checkpoint markers and resume,
LoRA, TRL's common arguments, loading policy / scorer / adapter, and the atomic final save.

Run folder layout (``output_dir``)::

    run_config.json        the settings and their hash (a resume must match it)
    checkpoints/checkpoint-<step>/   TRL/transformers checkpoints; one counts only once it holds COMPLETE_MARKER
    final/                 the trained policy (PEFT adapter or full model) + tokenizer + align_report.json
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import TrainerCallback, TrainingArguments

from preforch.adapter import PreferenceAdapter
from preforch.align.config import AlignConfig, hashed_settings
from preforch.align.model_card import MODEL_CARD_NAME, model_card
from preforch.align.trl_settings import check_run_environment, merged_trl_args
from preforch.atomic import check_output_dir, read_json, staged_dir, write_json
from preforch.errors import PreforchError, setting_hint
from preforch.models.generation import load_policy
from preforch.models.paths import EMBEDDED_POLICY
from preforch.provenance import check_scorers
from preforch.rewards.multi import MultiScorer
from preforch.rewards.normalize import Normalizer
from preforch.rewards.registry import build_scorers
from preforch.weighting import check_objectives

log = logging.getLogger(__name__)

RUN_CONFIG_NAME = "run_config.json"
CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
REPORT_NAME = "align_report.json"
#: Written into a checkpoint folder after transformers has finished writing it (see CompleteCheckpointCallback).
COMPLETE_MARKER = "preforch_complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class RunParts:
    """What a route trains with. ``weights_source`` says where the weights come from (for the report)."""

    model: Any
    tokenizer: Any
    scorer: Any
    normalizer: Normalizer
    adapter: Any
    objectives: list[str]
    embedded: bool


# ---- run folder, hash, resume ------------------------------------------------------------------------------


def prepare_run_dir(config: AlignConfig) -> str | None:
    """Create or check ``output_dir``; returns the checkpoint to resume from (or None to start fresh).

    A new run refuses an existing folder unless ``overwrite``; a resume refuses a folder whose run_config.json
    has another hash, naming the settings that differ.
    """
    out = Path(config.output_dir)
    check_output_dir(out)  # before any loading or training: not the root, not a file, somewhere writable
    check_run_environment(config.report_to, config.trl)
    record = {"hash": config.config_hash(), "route": type(config).__name__, "settings": hashed_settings(config)}
    if config.resume and (out / RUN_CONFIG_NAME).is_file():
        saved = read_json(out / RUN_CONFIG_NAME, "run config")
        if not isinstance(saved, dict):
            raise PreforchError(f"{out / RUN_CONFIG_NAME}: expected a JSON object, got {type(saved).__name__}")
        if saved.get("hash") != record["hash"]:
            old, new = saved.get("settings", {}), record["settings"]
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise PreforchError(f"{out}: cannot resume: the folder was made by a different config (hash "
                                f"{saved.get('hash')} vs {record['hash']}; settings differ: {diff})")
        return last_complete_checkpoint(out / CHECKPOINTS_DIR)
    # A folder holding only run_config.json is a run that stopped before training (a missing adapter, say):
    # nothing in it is worth keeping, so it does not block the next try.
    if out.exists() and any(p.name != RUN_CONFIG_NAME for p in out.iterdir()) and not config.resume:
        if not config.overwrite:
            raise PreforchError(f"{out}: output folder exists; pass {setting_hint('overwrite', 'true')} to replace it "
                                f"or {setting_hint('resume', 'true')} to continue it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_CONFIG_NAME, record)
    return None


def last_complete_checkpoint(folder: Path) -> str | None:
    """The highest-step checkpoint that carries COMPLETE_MARKER; incomplete ones are skipped (and logged)."""
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        m = _CHECKPOINT_RE.match(child.name)
        if m and child.is_dir():
            if (child / COMPLETE_MARKER).is_file():
                found.append((int(m.group(1)), child))
            else:
                log.warning("%s: incomplete checkpoint (no %s), ignored", child, COMPLETE_MARKER)
    return str(max(found)[1]) if found else None


def complete_checkpoint_callback(config_hash: str):
    """A TrainerCallback that marks each checkpoint complete once transformers has written all of it.

    transformers writes ``checkpoint-N`` in place; ``on_save`` runs after the last file, so the marker (written
    atomically) makes the checkpoint count. An interrupted save leaves a folder without it, which resume skips.
    """

    class CompleteCheckpointCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    write_json(folder / COMPLETE_MARKER, {"step": state.global_step, "config_hash": config_hash})
            return control

    return CompleteCheckpointCallback()


# ---- loading -----------------------------------------------------------------------------------------------


def load_normalizer(config: AlignConfig, adapter) -> Normalizer:
    if adapter is not None:
        return adapter.normalizer
    return Normalizer.load(config.normalizer)


def load_parts(config: AlignConfig, scorer=None, adapter=None, policy=None) -> RunParts:
    """Policy, scorer, adapter and normaliser; objects given as arguments are used as they are (tests, benchmarks)."""
    if adapter is None and config.adapter:
        adapter = PreferenceAdapter.from_pretrained(config.adapter, trust_remote_code=config.trust_remote_code)
    normalizer = load_normalizer(config, adapter)
    if scorer is None:
        scorers = build_scorers(config.scorers, device=config.device)
        # the adapter's (or the normaliser file's) record of the scorers its statistics were fitted on (issue 25)
        route = type(config).__name__.removesuffix("Job").lower()
        check_scorers(config.adapter or config.normalizer, config.scorers, scorers, f"align {route}",
                      config.allow_scorer_mismatch)
        scorer = MultiScorer(scorers, batch_size=config.scorer_batch_size)
    check_objectives(scorer.objectives, normalizer.objectives, "adapter" if adapter is not None else "normaliser")
    if policy is None:
        policy = load_policy(config.policy, trust_remote_code=config.trust_remote_code)
    model, tokenizer = policy
    embedded = config.policy in (None, "", EMBEDDED_POLICY)
    return RunParts(model, tokenizer, scorer, normalizer, adapter, list(normalizer.objectives), embedded)


def use_lora(config: AlignConfig, embedded: bool) -> bool:
    return embedded if config.lora is None else config.lora


def lora_config(config: AlignConfig):
    targets = config.lora_target_modules
    modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=modules, task_type="CAUSAL_LM")


def checkpointing_arg(enabled: bool) -> dict:
    """transformers ≥ 5.x names it ``activation_checkpointing`` (``gradient_checkpointing`` warns); older
    releases know only the old name."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


def trl_args(config: AlignConfig, **route_args) -> dict:
    """The keyword arguments of the route's TRL config: the ``trl:`` mapping, then preforch's own (which win)."""
    return merged_trl_args(config.trl, {**common_trl_args(config), **route_args})


def common_trl_args(config: AlignConfig) -> dict:
    """Keyword arguments every TRL config takes (transformers TrainingArguments)."""
    bf16 = config.bf16
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return dict(
        output_dir=str(Path(config.output_dir) / CHECKPOINTS_DIR), max_steps=config.max_steps,
        learning_rate=config.learning_rate, per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, seed=config.seed, data_seed=config.seed,
        bf16=bf16, fp16=False, use_cpu=not torch.cuda.is_available(), logging_steps=config.logging_steps,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        **checkpointing_arg(config.gradient_checkpointing), report_to=list(config.report_to),
        disable_tqdm=not config.progress, remove_unused_columns=False,
    )


# ---- final save --------------------------------------------------------------------------------------------


def save_final(trainer, config: AlignConfig, report: dict) -> Path:
    """Write ``output_dir/final`` atomically: model (PEFT adapter or full weights), tokenizer, report."""
    final = Path(config.output_dir) / FINAL_DIR
    if trainer.accelerator.is_main_process:
        with staged_dir(final, overwrite=True) as tmp:
            trainer.model.save_pretrained(tmp, safe_serialization=True)
            trainer.processing_class.save_pretrained(tmp)
            write_json(tmp / REPORT_NAME, report)
            # PEFT writes an empty template naming a machine-local base path; the card says what was trained
            card = model_card(report, _base_name_or_path(trainer.model), final)
            (tmp / MODEL_CARD_NAME).write_text(card, encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return final


def _base_name_or_path(model) -> str:
    """The base model's name or folder, under a PEFT wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return str(getattr(base, "name_or_path", "") or getattr(base.config, "_name_or_path", ""))


def base_report(config: AlignConfig, parts: RunParts, trainer, route: str, extra: dict | None = None) -> dict:
    history = trainer.state.log_history
    return {
        "route": route,
        "config_hash": config.config_hash(),
        "settings": dataclasses.asdict(config),
        "objectives": parts.objectives,
        "lora": use_lora(config, parts.embedded),
        "global_step": trainer.state.global_step,
        "log_history": history,
        **(extra or {}),
    }
