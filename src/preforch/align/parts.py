"""The parts :class:`preforch.align.config.AlignConfig` is composed of: one small dataclass per group of settings.

- :class:`PolicyPart`: the policy to train and whether model code may run (policy, trust_remote_code)
- :class:`DataPart`: the prompts and responses (data, prompt_column, chosen_column, rejected_column,
  preferred_id_column, limit)
- :class:`WeightingPart`: where per-prompt weights and the score normaliser come from (the shared
  :class:`preforch.weighting.WeightingSettings`: fallback, weight_mode, user_weights, blend, ``weighting()``; and
  adapter, normalizer)
- :class:`ScorersPart`: the reward scorers (scorers, scorer_batch_size, device, allow_scorer_mismatch)
- :class:`LoraPart`: LoRA through PEFT (lora, lora_r, lora_alpha, lora_dropout, lora_target_modules)
- :class:`TrainerPart`: the optimisation (learning_rate, max_steps, per_device_train_batch_size,
  gradient_accumulation_steps, max_prompt_length, seed, bf16, gradient_checkpointing, and ``trl``: any other
  field of TRL's config, see :mod:`preforch.align.trl_settings`)
- :class:`RunPart`: where and how loudly the run goes (logging_steps, save_steps, save_total_limit, output_dir,
  resume, overwrite, progress, report_to); these stay out of the run hash

The settings stay flat (one YAML key and one ``--flag`` per field); the parts only say which fields belong
together and check them. Each part that has something to check does it in ``_check_<part>()``, which returns
its out-of-range values as ``"name=value"`` (AlignConfig reports those of all parts in one message) and raises
:class:`PreforchError` for a rule that ties its fields together. Error messages start with ``align config:``.

Only the align routes use these parts, except the weighting settings, which every route shares. `preforch
generate`, `score`, `serve` and `adapter train` have other settings of the same names (scorers, device, ...) with
other defaults or help texts, so they keep their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preforch.align.trl_settings import OWNED_ELSEWHERE
from preforch.config import field
from preforch.data.rows import ON_BAD_ROWS_HELP, ColumnMap, OnBadRows
from preforch.errors import PreforchError
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES, check_device
from preforch.weighting import WeightingSettings

EMBEDDED_EXAMPLE = "embedded:example"


def _below_one(config, *names: str) -> list[str]:
    """``"name=value"`` for each of ``names`` whose value is < 1."""
    return [f"{n}={getattr(config, n)!r}" for n in names if getattr(config, n) < 1]


@dataclass
class PolicyPart:
    """The policy to train, and whether model code from its folder may run."""

    policy: str | None = field(None, help="policy: a local folder, a hub name (cached locally), or null / "
                                          "'embedded:smollm2' for the embedded SmolLM2-135M-Instruct")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder and the adapter's "
                                                "encoder folder (only if you trust them; an artifact cannot allow it)")


@dataclass
class DataPart:
    """The prompts (and, for DPO and conditioned SFT, the responses)."""

    data: str = field(EMBEDDED_EXAMPLE, help="prompts (and responses): a .jsonl/.json/.parquet/.csv file, a saved "
                                             "datasets folder, a hub data set name from the local datasets cache "
                                             "(owner/name[:split], e.g. Anthropic/hh-rlhf:test), or an embedded set "
                                             "such as 'embedded:example' (HH harmless + HH helpful + UltraFeedback)")
    prompt_column: str = field("prompt", help="column holding the prompt (text, HH dialogue text or a message list; "
                                              "rows without it are read as HH dialogues or 'messages' lists)")
    chosen_column: str = field("chosen", help="DPO pairs / conditioned SFT: column holding the preferred response "
                                              "(or, with preferred_id_column, response 0)")
    rejected_column: str = field("rejected", help="DPO pairs / conditioned SFT: column holding the rejected response "
                                                  "(or, with preferred_id_column, response 1)")
    preferred_id_column: str | None = field(None, help="column saying which of chosen_column (0) and rejected_column "
                                            "(1) is preferred, e.g. PKU-SafeRLHF's safer_response_id")
    limit: int | None = field(None, help="use at most this many rows (after a seeded shuffle); null = all")
    on_bad_rows: OnBadRows = field("error", help=ON_BAD_ROWS_HELP)

    def _check_data(self) -> list[str]:
        return [f"limit={self.limit!r}"] if self.limit is not None and self.limit < 1 else []

    def response_columns(self) -> ColumnMap:
        """Where the responses are (the prompt column is read by the routes themselves: it may be absent in HH or
        'messages' rows)."""
        return ColumnMap("prompt", self.chosen_column, self.rejected_column, self.preferred_id_column)


@dataclass
class WeightingPart(WeightingSettings):
    """Where each prompt's weights come from (:class:`preforch.weighting.WeightingSettings`, the part every route
    shares), the adapter that gives w(x), and the normaliser of the scores."""

    adapter: str | None = field(None, help="preference-adapter folder (needed for weight modes adapter/blend; its "
                                           "normaliser is used for the scores in every mode)")
    normalizer: str | None = field(None, help="normalizer.json to use when no adapter is given (fixed weights)")

    def _check_weighting(self) -> list[str]:
        try:
            weighting = self.weighting()
        except PreforchError as err:
            raise PreforchError(f"align config: {err}") from None
        if weighting.needs_adapter and not self.adapter:
            raise PreforchError(f"align config: weight_mode {weighting.mode!r} needs 'adapter' (a preference-adapter "
                                "folder)")
        if not self.adapter and not self.normalizer:
            raise PreforchError("align config: give 'adapter' (its normaliser is used) or 'normalizer' (a "
                                "normalizer.json) so scores can be normalised")
        return []


@dataclass
class ScorersPart:
    """The reward scorers s_k(x, y)."""

    scorers: list[dict] = field([{"type": "builtin"}], help="scorer specs as in 'preforch score' (e.g. {type: builtin},"
                                                           " {type: hf, path: DIR, objective: harmless})")
    scorer_batch_size: int = field(64, help="responses per scoring chunk")
    device: str = field(DEFAULT_DEVICE, help=f"device of model scorers whose spec sets none: {DEVICE_CHOICES}")
    allow_scorer_mismatch: bool = field(False, help="train with scorers other than the ones the adapter (or the "
                                                    "normaliser file) was fitted with (its provenance record) behind "
                                                    "the same objective names; logged. Off: refused")

    def _check_scorers(self) -> list[str]:
        if not self.scorers:
            raise PreforchError("align config: 'scorers' is empty; give at least one scorer spec")
        check_device(self.device, "align config: device")
        return _below_one(self, "scorer_batch_size")


@dataclass
class LoraPart:
    """LoRA adapters through PEFT instead of training all weights."""

    lora: bool | None = field(None, help="train LoRA adapters through PEFT instead of all weights; null = on for "
                                         "the embedded policy, off for others")
    lora_r: int = field(8, help="LoRA rank")
    lora_alpha: int = field(16, help="LoRA alpha")
    lora_dropout: float = field(0.0, help="LoRA dropout")
    lora_target_modules: str = field("all-linear", help="PEFT target_modules ('all-linear' or comma-separated names)")

    def _check_lora(self) -> list[str]:
        return _below_one(self, "lora_r", "lora_alpha")


@dataclass
class TrainerPart:
    """The optimisation: steps, batch sizes, precision and seed."""

    learning_rate: float = field(1e-5, help="optimiser learning rate")
    max_steps: int = field(10, help="optimiser steps")
    per_device_train_batch_size: int = field(4, help="rows per device per step (GRPO/RLOO: completions)")
    gradient_accumulation_steps: int = field(1, help="micro-batches per optimiser step")
    max_prompt_length: int = field(256, help="prompt tokens the policy reads, kept from the end (earliest turns go "
                                             "first); the reward models still score the whole prompt")
    seed: int = field(0, help="seed for data order, sampling and initialisation")
    bf16: bool | None = field(None, help="bf16 mixed precision; null = on when a bf16-capable GPU is present")
    gradient_checkpointing: bool = field(False, help="trade compute for memory (large policies)")
    trl: dict[str, Any] = field({}, key_value=True, help="any other field of the route's TRL config (GRPOConfig, "
                                "RLOOConfig, DPOConfig, SFTConfig), e.g. {use_vllm: true, vllm_mode: colocate} or "
                                "--trl use_vllm=true; checked against that class. Fields preforch sets are refused "
                                "with the setting to use: those named like a preforch setting, and "
                                + ", ".join(OWNED_ELSEWHERE))

    def _check_trainer(self) -> list[str]:
        bad = [f"learning_rate={self.learning_rate!r}"] if self.learning_rate <= 0 else []
        return bad + _below_one(self, "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                               "max_prompt_length")


@dataclass
class RunPart:
    """Where and how loudly the run goes. None of these enters the run hash (see ``RUN_CONTROL_FIELDS``)."""

    logging_steps: int = field(1, help="log metrics every this many steps")
    save_steps: int = field(5, help="save a checkpoint every this many steps")
    save_total_limit: int | None = field(2, help="checkpoints kept (older ones are deleted); null = all")
    output_dir: str = field("runs/align", help="run folder: run_config.json, checkpoints/, final/")
    resume: bool = field(False, help="continue the run in output_dir from its last complete checkpoint")
    overwrite: bool = field(False, help="replace an existing output_dir (ignored with resume)")
    progress: bool = field(True, help="show progress bars")
    report_to: list[str] = field([], help="experiment trackers to log to (TRL's report_to): [] for none, "
                                          "tensorboard (event files under OUTPUT_DIR/checkpoints/runs/), trackio "
                                          "(local), wandb, ...; each needs its package. The pro/* metrics go too")

    def _check_run(self) -> list[str]:
        return _below_one(self, "logging_steps", "save_steps")
