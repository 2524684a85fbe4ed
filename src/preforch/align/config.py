"""Settings of the training routes (`preforch align grpo|rloo|dpo|conditioned`).

:class:`AlignConfig` holds what every route shares (policy, data, weights, scorers, LoRA, optimiser, run folder);
each route adds its own fields in a subclass. Every choice is a field with a documented default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from preforch.config import field
from preforch.errors import PreforchError
from preforch.weighting import Weighting, WeightMode

Aggregation = Literal["sum_then_normalize", "normalize_then_sum"]
ScaleRewards = Literal["group", "batch", "none"]
PairSource = Literal["auto", "columns", "candidates", "sample"]
MarginMode = Literal["none", "modpo"]
TagMapping = Literal["ric", "linear"]
EMBEDDED_EXAMPLE = "embedded:example"

#: Settings that only say where/how loudly a run goes; they do not enter the config hash, so a run can be
#: resumed with a different logging cadence, or with ``resume: true`` itself set.
RUN_CONTROL_FIELDS = ("output_dir", "resume", "overwrite", "progress", "logging_steps", "save_steps",
                      "save_total_limit", "max_steps")


@dataclass
class AlignConfig:
    """What every alignment route shares."""

    policy: str | None = field(None, help="policy: a local folder, a hub name (cached locally), or null / "
                                          "'embedded:smollm2' for the embedded SmolLM2-135M-Instruct")
    data: str = field(EMBEDDED_EXAMPLE, help="prompts (and responses): a .jsonl/.json/.parquet/.csv file, a saved "
                                             "datasets folder, or an embedded set such as 'embedded:example' (HH "
                                             "harmless + HH helpful + UltraFeedback)")
    prompt_column: str = field("prompt", help="column holding the prompt (text, HH dialogue text or a message list; "
                                              "rows without it are read as HH dialogues or 'messages' lists)")
    limit: int | None = field(None, help="use at most this many rows (after a seeded shuffle); null = all")
    weight_mode: WeightMode | None = field(None, help="per-prompt weights: 'adapter' (w(x) from the adapter), "
                                           "'fixed' (user_weights for every prompt) or 'blend' (blend·user + "
                                           "(1−blend)·w(x)); null = adapter without user_weights, fixed with them, "
                                           "blend with them and a blend")
    adapter: str | None = field(None, help="preference-adapter folder (needed for weight modes adapter/blend; its "
                                           "normaliser is used for the scores in every mode)")
    user_weights: list[float] | dict[str, float] | None = field(None, help="the user's weights (modes fixed/blend): "
                                                                           "one per objective, or {objective: weight}")
    blend: float | None = field(None, help="mode blend: share of the user's weights (1 = user only, 0 = adapter "
                                           "only); null = 0.5")
    normalizer: str | None = field(None, help="normalizer.json to use when no adapter is given (fixed weights)")
    scorers: list[dict] = field([{"type": "builtin"}], help="scorer specs as in 'preforch score' (e.g. {type: builtin},"
                                                           " {type: hf, path: DIR, objective: harmless})")
    scorer_batch_size: int = field(64, help="responses per scoring chunk")
    device: str = field("auto", help="device of model scorers whose spec sets none (auto: cuda if available)")
    lora: bool | None = field(None, help="train LoRA adapters through PEFT instead of all weights; null = on for "
                                         "the embedded policy, off for others")
    lora_r: int = field(8, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha")
    lora_dropout: float = field(0.0, help="LoRA dropout")
    lora_target_modules: str = field("all-linear", help="PEFT target_modules ('all-linear' or comma-separated names)")
    learning_rate: float = field(1e-5, help="optimiser learning rate")
    max_steps: int = field(10, help="optimiser steps")
    per_device_train_batch_size: int = field(4, help="rows per device per step (GRPO/RLOO: completions)")
    gradient_accumulation_steps: int = field(1, help="micro-batches per optimiser step")
    max_prompt_length: int = field(256, help="prompt tokens kept (from the end)")
    seed: int = field(0, help="seed for data order, sampling and initialisation")
    bf16: bool | None = field(None, help="bf16 mixed precision; null = on when a bf16-capable GPU is present")
    gradient_checkpointing: bool = field(False, help="trade compute for memory (large policies)")
    logging_steps: int = field(1, help="log metrics every this many steps")
    save_steps: int = field(5, help="save a checkpoint every this many steps")
    save_total_limit: int | None = field(2, help="checkpoints kept (older ones are deleted); null = all")
    output_dir: str = field("runs/align", help="run folder: run_config.json, checkpoints/, final/")
    resume: bool = field(False, help="continue the run in output_dir from its last complete checkpoint")
    overwrite: bool = field(False, help="replace an existing output_dir (ignored with resume)")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder and the adapter's "
                                                "encoder folder (only if you trust them; an artifact cannot allow it)")
    progress: bool = field(True, help="show progress bars")

    def __post_init__(self) -> None:
        positive = ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps",
                    "save_steps", "lora_r", "lora_alpha", "scorer_batch_size", "max_prompt_length")
        bad = [f"{n}={getattr(self, n)!r}" for n in positive if getattr(self, n) < 1]
        if self.learning_rate <= 0:
            bad.append(f"learning_rate={self.learning_rate!r}")
        if self.limit is not None and self.limit < 1:
            bad.append(f"limit={self.limit!r}")
        if bad:
            raise PreforchError(f"align config: invalid value for {', '.join(bad)}")
        weighting = self.weighting()
        if weighting.needs_adapter and not self.adapter:
            raise PreforchError(f"align config: weight_mode {weighting.mode!r} needs 'adapter' (a preference-adapter "
                                "folder)")
        if not self.adapter and not self.normalizer:
            raise PreforchError("align config: give 'adapter' (its normaliser is used) or 'normalizer' (a "
                                "normalizer.json) so scores can be normalised")
        if not self.scorers:
            raise PreforchError("align config: 'scorers' is empty; give at least one scorer spec")

    def weighting(self) -> Weighting:
        """Where each prompt's weights come from (errors name the setting)."""
        try:
            return Weighting.infer(self.weight_mode, self.user_weights, self.blend)
        except PreforchError as err:
            raise PreforchError(f"align config: {err}") from None

    def config_hash(self) -> str:
        """SHA-256 (first 16 hex) of the settings that shape the run (not RUN_CONTROL_FIELDS)."""
        return hashlib.sha256(json.dumps(hashed_settings(self), sort_keys=True).encode()).hexdigest()[:16]


def hashed_settings(config) -> dict:
    """The settings a resume must match, plus the route's class name."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_CONTROL_FIELDS}
    values["__route__"] = type(config).__name__
    return values


@dataclass
class GRPOJob(AlignConfig):
    """`preforch align grpo`: GRPO on R(x, y) = Σ_k w_k(x)·s̃_k(x, y)."""

    num_generations: int = field(4, help="completions per prompt (G); per_device_train_batch_size must be a multiple")
    max_completion_length: int = field(32, help="new tokens per completion")
    temperature: float = field(1.0, help="sampling temperature while training")
    beta: float = field(0.0, help="KL coefficient against the reference policy (0 = no reference model)")
    loss_type: str = field("dapo", help="TRL GRPO loss_type (grpo, dapo, dr_grpo, bnpo, ...)")
    scale_rewards: ScaleRewards = field("group", help="advantage scaling: group std, batch std or none")
    aggregation: Aggregation = field("sum_then_normalize", help="TRL multi_objective_aggregation; with one combined "
                                     "reward both are equivalent, sum_then_normalize is the safe default")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise PreforchError(f"grpo: num_generations must be >= 2, got {self.num_generations}")
        if self.max_completion_length < 1 or self.temperature <= 0:
            raise PreforchError("grpo: max_completion_length must be >= 1 and temperature > 0")


@dataclass
class RLOOJob(GRPOJob):
    """`preforch align rloo`: RLOO (leave-one-out baseline) on the same combined reward."""

    normalize_advantages: bool = field(False, help="standardise RLOO advantages over the batch")


@dataclass
class DPOJob(AlignConfig):
    """`preforch align dpo`: pairs labelled by R with a minimum margin, then DPO."""

    pairs_from: PairSource = field("auto", help="responses to pair: 'columns' (chosen/rejected), 'candidates' "
                                   "(candidate_columns), 'sample' (num_samples from the policy) or 'auto' "
                                   "(candidates if given, else chosen/rejected columns, else sample)")
    candidate_columns: list[str] = field([], help="columns holding several candidate responses per prompt")
    num_samples: int = field(4, help="sample mode: responses sampled per prompt")
    sample_max_new_tokens: int = field(48, help="sample mode: new tokens per sampled response")
    sample_temperature: float = field(0.9, help="sample mode: sampling temperature")
    min_margin: float = field(0.1, help="keep a pair only if R(chosen) − R(rejected) >= min_margin")
    margin_mode: MarginMode = field("none", help="'modpo': subtract the weighted normalised score difference of "
                                    "the objectives other than modpo_objective from the DPO logit (MODPO-style)")
    modpo_objective: str | None = field(None, help="modpo: the objective the DPO term itself learns")
    margin_scale: float = field(1.0, help="modpo: multiplier of the margin")
    beta: float = field(0.1, help="DPO beta")
    max_length: int = field(512, help="prompt + response tokens kept")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_samples < 2:
            raise PreforchError(f"dpo: num_samples must be >= 2, got {self.num_samples}")
        if self.min_margin < 0 or self.beta <= 0:
            raise PreforchError(f"dpo: min_margin must be >= 0 and beta > 0, got {self.min_margin}, {self.beta}")
        if self.margin_mode == "modpo" and not self.modpo_objective:
            raise PreforchError("dpo: margin_mode 'modpo' needs 'modpo_objective' (the objective DPO learns)")


@dataclass
class ConditionedJob(AlignConfig):
    """`preforch align conditioned`: Rewards-in-Context SFT on score-tagged prompts."""

    use_rejected: bool = field(True, help="train on rejected responses too (with their own, lower, scores)")
    tag_decimals: int = field(1, help="decimals of the score tags")
    tag_mapping: TagMapping = field("ric", help="w(x) → desired scores: 'ric' target_k = w_k/‖w‖₂·(high−low)+low; "
                                    "'linear' target_k = w_k/max(w)·(high−low)+low")
    tag_low_quantile: float = field(0.0, help="'low' of the mapping: this quantile of the training scores per objective")
    tag_high_quantile: float = field(1.0, help="'high' of the mapping: this quantile of the training scores")
    max_length: int = field(512, help="prompt + response tokens kept")
    num_train_epochs: float | None = field(None, help="epochs instead of max_steps (null = use max_steps)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.tag_low_quantile < self.tag_high_quantile <= 1:
            raise PreforchError(f"conditioned: need 0 <= tag_low_quantile < tag_high_quantile <= 1, got "
                                f"{self.tag_low_quantile}, {self.tag_high_quantile}")
        if not 0 <= self.tag_decimals <= 4:
            raise PreforchError(f"conditioned: tag_decimals must be 0..4, got {self.tag_decimals}")
