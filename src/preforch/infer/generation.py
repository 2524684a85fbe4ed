"""Generating with a trained policy: loading ``final/`` (full weights, or a LoRA adapter merged into its base model
without PEFT), and conditioned generation (desired-score tags from the weights). Shared by `preforch generate`
and the server. Shape: texts [N][G]."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoTokenizer

from preforch.artifacts import check_own_file
from preforch.conversation import as_conversations
from preforch.errors import PreforchError
from preforch.infer.conditioning import (
    CONDITIONING_NAME,
    Conditioning,
    desired_scores,
    tag_prompt,
    tag_weights,
)
from preforch.models.generation import LoadedPolicy, generate_with_config, load_policy
from preforch.models.generation_config import GenerationConfig
from preforch.models.paths import model_load_error
from preforch.weighting import Weighting, resolve_weights

__all__ = ["ConditionedGeneration", "conditioned_generation", "generate_conditioned", "load_final_policy",
           "merge_lora_folder"]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: PEFT's prefix on the base model's module paths in a saved LoRA adapter.
_PEFT_PREFIX = "base_model.model."


@dataclass
class ConditionedGeneration:
    """Replies of a conditioned policy and what they were asked for. Shapes: texts [N][G]; weights and
    targets [N, K], columns in ``objectives`` (the tags' order)."""

    texts: list[list[str]]
    weights: np.ndarray
    targets: np.ndarray
    objectives: list[str]
    weight_source: str


def conditioned_generation(final_dir: str | Path, prompts: list, weighting: Weighting | None = None, adapter=None,
                           policy=None, generation=None, progress: bool = False) -> ConditionedGeneration:
    """Generate from a conditioned policy with desired-score tags from the resolved weights (default: the
    adapter's w(x)). User weights given as a list are in the adapter's objective order (the tags' order without
    an adapter); the adapter's objectives are matched to the tags by name."""
    conditioning = Conditioning.load(Path(final_dir) / CONDITIONING_NAME)
    prompts = as_conversations(prompts)
    objectives = list(adapter.objectives) if adapter is not None else conditioning.objectives
    resolved = resolve_weights(prompts, objectives, weighting or Weighting(), adapter)
    weights = tag_weights(resolved.weights, objectives, conditioning)  # [N, K], tags' order
    targets = desired_scores(weights, conditioning)  # [N, K]
    if policy is None:
        policy = load_final_policy(final_dir)
    model, tokenizer = policy
    tagged = [tag_prompt(p, conditioning.objectives, t, conditioning.decimals) for p, t in zip(prompts, targets)]
    texts = generate_with_config(model, tokenizer, tagged, generation or GenerationConfig(), progress=progress)
    return ConditionedGeneration(texts, weights, targets, conditioning.objectives, resolved.source)


def generate_conditioned(final_dir: str | Path, prompts: list, weighting: Weighting | None = None, adapter=None,
                         policy=None, **generation) -> list[list[str]]:
    """:func:`conditioned_generation`'s replies; ``generation``: GenerationConfig fields. Shape: [N][G]."""
    progress = bool(generation.pop("progress", False))
    return conditioned_generation(final_dir, prompts, weighting, adapter, policy, GenerationConfig(**generation),
                                  progress).texts


def load_final_policy(final_dir: str | Path, trust_remote_code: bool = False) -> LoadedPolicy:
    """A trained policy from ``final/``: a LoRA adapter merged into its base model, or full weights. Custom model
    code runs only when the caller passes ``trust_remote_code`` (never because the folder asks for it)."""
    final = Path(final_dir)
    if not (final / ADAPTER_CONFIG).is_file():
        return load_policy(str(final), trust_remote_code=trust_remote_code)
    if not (final / ADAPTER_WEIGHTS).is_file() and (final / "adapter_model.bin").exists():
        raise PreforchError(f"{final}: no {ADAPTER_WEIGHTS} (it holds adapter_model.bin, a pickle checkpoint); "
                            "preforch reads LoRA weights only as safetensors (re-save with safe_serialization=True)")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        check_own_file(final / name)
    settings = _lora_settings(final)
    model, _ = load_policy(settings["base_model_name_or_path"], trust_remote_code=trust_remote_code)
    merge_lora_folder(model, final, settings)
    try:  # the tokenizer saved with the run; trust_remote_code is passed explicitly (left out, transformers asks)
        tokenizer = AutoTokenizer.from_pretrained(str(final), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise model_load_error(err, final, "policy folder") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedPolicy(model.eval(), tokenizer)


def _lora_settings(final: Path) -> dict:
    """The adapter's config, refusing what a plain merge cannot reproduce."""
    path = final / ADAPTER_CONFIG
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PreforchError(f"{path}: not a readable adapter config ({err})") from None
    if not isinstance(settings, dict) or settings.get("peft_type", "LORA") != "LORA":
        raise PreforchError(f"{path}: not a LoRA adapter config")
    base, r, alpha = settings.get("base_model_name_or_path"), settings.get("r"), settings.get("lora_alpha")
    if not isinstance(base, str) or not base:
        raise PreforchError(f"{path}: 'base_model_name_or_path' names no base model")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1 or not isinstance(alpha, (int, float)):
        raise PreforchError(f"{path}: 'r' must be a positive integer and 'lora_alpha' a number")
    unsupported = [key for key in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save",
                                   "layers_to_transform") if settings.get(key)]
    if settings.get("bias", "none") != "none":
        unsupported.append("bias")
    if unsupported:
        raise PreforchError(f"{path}: LoRA settings {unsupported} are not supported by the merge (preforch's align "
                            "routes never set them)")
    return settings


def merge_lora_folder(model: torch.nn.Module, final: Path, settings: dict) -> None:
    """W <- W + s * B A for every adapted linear map of ``model``, in place; s = alpha / r (alpha / sqrt(r) with
    rsLoRA). The result equals PEFT's ``merge_and_unload`` without importing PEFT."""
    try:
        tensors = load_file(str(final / ADAPTER_WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise PreforchError(f"{final / ADAPTER_WEIGHTS}: not a readable safetensors file ({err})") from None
    r, alpha = settings["r"], settings["lora_alpha"]
    scale = alpha / math.sqrt(r) if settings.get("use_rslora") else alpha / r
    modules = dict(model.named_modules())
    names = sorted(key[: -len(".lora_A.weight")] for key in tensors if key.endswith(".lora_A.weight"))
    if not names or len(tensors) != 2 * len(names):
        raise PreforchError(f"{final / ADAPTER_WEIGHTS}: expected lora_A / lora_B pairs only, got {sorted(tensors)[:4]}")
    with torch.no_grad():
        for name in names:
            path = name.removeprefix(_PEFT_PREFIX)
            linear = modules.get(path)
            a, b = tensors[f"{name}.lora_A.weight"].float(), tensors.get(f"{name}.lora_B.weight")  # [r, in], [out, r]
            if not isinstance(linear, torch.nn.Linear) or b is None:
                raise PreforchError(f"{final / ADAPTER_WEIGHTS}: {path!r} is not a linear map of the base model "
                                    "(or its lora_B is missing)")
            delta = scale * (b.float() @ a)  # [out, in]
            if settings.get("fan_in_fan_out"):
                delta = delta.T
            if delta.shape != linear.weight.shape or not delta.isfinite().all():
                raise PreforchError(f"{final / ADAPTER_WEIGHTS}: {path!r}: update of shape {tuple(delta.shape)} for a "
                                    f"weight of shape {tuple(linear.weight.shape)} (or not finite)")
            linear.weight += delta.to(linear.weight.dtype)
