"""Settings of the training routes (`preforch align grpo|rloo|dpo|conditioned`).

:class:`AlignConfig` holds what every route shares; it is composed of the parts in :mod:`preforch.align.parts`
(policy, data, weighting, scorers, LoRA, trainer, run folder), each owning its fields and their checks. Each
route adds its own fields in a subclass. The settings stay flat: one YAML key and one ``--flag`` per field, and
every choice is a field with a documented default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from preforch.align.parts import (
    DataPart,
    LoraPart,
    PolicyPart,
    RunPart,
    ScorersPart,
    TrainerPart,
    WeightingPart,
)
from preforch.align.trl_settings import check_trl_settings
from preforch.config import field
from preforch.errors import PreforchError
from preforch.infer.conditioning import TagMapping

Aggregation = Literal["sum_then_normalize", "normalize_then_sum"]
ScaleRewards = Literal["group", "batch", "none"]
PairSource = Literal["auto", "columns", "candidates", "sample"]
MarginMode = Literal["none", "modpo"]
#: TRL 1.16's GRPOConfig.loss_type values (how token losses are averaged into the batch loss).
GRPOLossType = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]

#: Settings that only say where/how loudly a run goes (the RunPart), and max_steps; they do not enter the config
#: hash, so a run can be resumed with a different logging cadence or step budget, or with ``resume: true`` itself set.
RUN_CONTROL_FIELDS = (*(f.name for f in dataclasses.fields(RunPart)), "max_steps")


# A dataclass takes the fields of its LAST base first, so the parts are listed last-first: --help (and
# dataclasses.fields) show policy, data, weighting, scorers, LoRA, trainer, run.
@dataclass
class AlignConfig(RunPart, TrainerPart, LoraPart, ScorersPart, WeightingPart, DataPart, PolicyPart):
    """What every alignment route shares: the fields of its parts (see :mod:`preforch.align.parts`)."""

    def __post_init__(self) -> None:
        """Each part checks its own fields, in --help order; out-of-range values of all parts make one error."""
        bad = [*self._check_data(), *self._check_weighting(), *self._check_scorers(), *self._check_lora(),
               *self._check_trainer(), *self._check_run()]
        if bad:
            raise PreforchError(f"align config: invalid value for {', '.join(bad)}")
        if self.trl:  # only then is TRL imported: a config without it parses without trl

            own = {f.name for f in dataclasses.fields(self)} - {"trl"}
            self.trl = check_trl_settings(self.trl, type(self).__name__, own)

    def config_hash(self) -> str:
        """SHA-256 (first 16 hex) of the settings that shape the run (not RUN_CONTROL_FIELDS)."""
        return hashlib.sha256(json.dumps(hashed_settings(self), sort_keys=True).encode()).hexdigest()[:16]


def hashed_settings(config) -> dict:
    """The settings a resume must match, plus the route's class name."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_CONTROL_FIELDS}
    if not values.get("trl"):  # runs from before the trl mapping existed keep their hash
        values.pop("trl", None)
    for name, default in (("fallback", "off"), ("allow_scorer_mismatch", False), ("chosen_column", "chosen"),
                          ("rejected_column", "rejected"), ("preferred_id_column", None), ("on_bad_rows", "error")):
        if values.get(name) == default:  # added after runs existed: at its default, old runs keep their hash
            values.pop(name)
    values["__route__"] = type(config).__name__
    return values


@dataclass
class GRPOJob(AlignConfig):
    """`preforch align grpo`: GRPO on R(x, y) = Σ_k w_k(x)·s̃_k(x, y)."""

    num_generations: int = field(4, help="completions per prompt (G); per_device_train_batch_size must be a multiple")
    max_completion_length: int = field(32, help="new tokens per completion")
    temperature: float = field(1.0, help="sampling temperature while training")
    beta: float = field(0.0, help="KL coefficient against the reference policy (0 = no reference model)")
    loss_type: GRPOLossType = field("dapo", help="TRL GRPO loss_type: how token losses are averaged")
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
