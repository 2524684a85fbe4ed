"""The ``trl:`` mapping of an align config: any field of the route's TRL config class, checked at parse time.

Each route builds one TRL config (GRPO → ``GRPOConfig``, RLOO → ``RLOOConfig``, DPO → ``DPOConfig``, conditioned →
``SFTConfig``). preforch fills the fields it owns from its own settings; ``trl:`` (YAML) or ``--trl KEY=VALUE``
(flags) reaches every other field, including ones a later TRL release adds, so a user coming from
``trl grpo --config`` can set vLLM generation, loss variants, generation settings or DeepSpeed/FSDP options.

A key preforch owns is refused with the setting to use instead (two places for one value would let them
disagree silently); an unknown key is refused with the closest valid names. Both checks read the TRL class's
dataclass fields, so they follow the installed TRL.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import typing
from typing import Any

from preforch.config import coerce
from preforch.errors import PreforchError, setting_hint

#: route config class name → TRL config class; AlignConfig itself (no route) takes TrainingArguments' fields.
TRL_CONFIG_CLASSES = {"GRPOJob": ("trl", "GRPOConfig"), "RLOOJob": ("trl", "RLOOConfig"),
                      "DPOJob": ("trl", "DPOConfig"), "ConditionedJob": ("trl", "SFTConfig"),
                      "AlignConfig": ("transformers", "TrainingArguments")}

#: TRL fields preforch sets from a setting of another name, or from the machine: the TRL key → what sets it.
#: (A TRL field named like a preforch setting, e.g. learning_rate or beta, is set by that setting.)
OWNED_ELSEWHERE = {
    "data_seed": "seed",
    "fp16": "bf16",
    "use_cpu": "the machine (CPU when no CUDA device is present)",
    "save_strategy": "save_steps",
    "activation_checkpointing": "gradient_checkpointing",
    "disable_tqdm": "progress",
    "remove_unused_columns": "preforch (the reward reads the pro_weights and pro_conversation columns)",
    "multi_objective_aggregation": "aggregation",
    "precompute_ref_log_probs": "margin_mode (modpo precomputes the reference log-probs)",
    "completion_only_loss": "preforch (conditioned SFT learns the response only)",
}


def trl_config_class(route_class: str):
    """The TRL (or transformers) config class of a route, imported on demand."""
    module, name = TRL_CONFIG_CLASSES.get(route_class, TRL_CONFIG_CLASSES["AlignConfig"])
    return getattr(importlib.import_module(module), name)


def _owner(key: str, own_fields: set[str]) -> str | None:
    if key in own_fields:
        return key
    return OWNED_ELSEWHERE.get(key)


def check_trl_settings(values: dict, route_class: str, own_fields: set[str]) -> dict:
    """``values`` checked against the route's TRL config class; returns them with flag text converted to the
    field types. Errors are one line naming the key (and the closest valid names or the owning setting)."""
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise PreforchError(f"align config: 'trl' must be a mapping of TRL config fields, got {values!r:.80}")
    cls = trl_config_class(route_class)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=3, cutoff=0.6)
            raise PreforchError(f"align config: trl.{key} is not a field of {cls.__name__}"
                                + (f"; did you mean {', '.join(close)}?" if close else
                                   f" (see `python -c 'import {cls.__module__.split('.')[0]}; "
                                   f"help({cls.__module__.split('.')[0]}.{cls.__name__})'`)"))
        owner = _owner(key, own_fields)
        if owner is not None:
            hint = setting_hint(owner, "...") if owner in own_fields else owner
            raise PreforchError(f"align config: trl.{key} is set by preforch; use {hint} instead")
        # null keeps TRL's meaning of None (several fields typed without None default to it)
        out[key] = None if value is None else coerce(value, hints.get(key, Any), f"trl.{key}", "align config")
    return out


def merged_trl_args(trl: dict, preforch_args: dict) -> dict:
    """The keyword arguments of the TRL config: the ``trl:`` mapping, then preforch's own values (which win)."""
    return {**trl, **preforch_args}


def check_run_environment(report_to: list[str], trl: dict) -> None:
    """Before any model is loaded: the trackers in ``report_to`` and vLLM generation have what they need."""
    packages = {"tensorboard": ("tensorboard", "tensorboardX"), "trackio": ("trackio",), "wandb": ("wandb",),
                "mlflow": ("mlflow",), "comet_ml": ("comet_ml",), "clearml": ("clearml",)}
    for name in report_to:
        needed = packages.get(name)
        if needed and not any(importlib.util.find_spec(p) for p in needed):
            raise PreforchError(f"align config: report_to {name!r} needs the {needed[0]} package (pip install "
                                f"{needed[0]}, or preforch[track]); or {setting_hint('report_to', '[]')}")
    if trl.get("use_vllm"):
        import torch

        if importlib.util.find_spec("vllm") is None:
            raise PreforchError("align config: trl.use_vllm needs the vllm package (pip install vllm, on a machine "
                                "with a CUDA GPU); or drop trl.use_vllm to generate with transformers")
        if not torch.cuda.is_available():
            raise PreforchError("align config: trl.use_vllm needs a CUDA GPU and none is visible; drop trl.use_vllm "
                                "to generate with transformers on this machine")
