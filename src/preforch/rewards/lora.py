"""LoRA on a BERT-style encoder, without PEFT: which linear maps get adapters, reading them off a trained model,
and merging them back (plain arithmetic). Training wraps the encoder with PEFT (:func:`preforch.align.reward_lora.
add_lora`, under align/, the one place that imports PEFT) on the top ``spec.layers`` layers only; the layers below stay
frozen, so their output can be computed once and cached (:func:`top_layers_forward` runs the adapted layers on
it). What is saved is the adapters alone (``lora_tensors``: a few hundred KiB, keyed by the plain module path).
Scoring never imports PEFT: ``merge_lora`` adds (alpha / rank)·B·A into each target weight of a plain encoder,
so a LoRA reward model scores at the plain encoder's cost.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from preforch.errors import PreforchError
from preforch.rewards.head_config import LoraSpec

__all__ = ["expected_lora_shapes", "lora_fingerprint", "lora_targets", "lora_tensors", "lower_states", "merge_lora", "num_layers", "top_indices",
           "top_layers_forward"]


def num_layers(model: nn.Module) -> int:
    return len(model.encoder.layer)


def top_indices(model: nn.Module, spec: LoraSpec) -> list[int]:
    n = num_layers(model)
    if spec.layers > n:
        raise PreforchError(f"encoder LoRA: layers {spec.layers}, but the encoder has {n}")
    return list(range(n - spec.layers, n))


def lora_targets(model: nn.Module, spec: LoraSpec) -> dict[str, nn.Linear]:
    """Module path → linear map that gets an adapter (paths as in the plain encoder's state dict)."""
    out = {}
    for i in top_indices(model, spec):
        for name, module in model.encoder.layer[i].named_modules():
            if isinstance(module, nn.Linear) and name.split(".")[-1] in spec.targets:
                out[f"encoder.layer.{i}.{name}"] = module
    return out


def lora_tensors(peft_model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters as ``<module path>.lora_A`` [r, in] / ``.lora_B`` [out, r] tensors (no PEFT naming)."""
    out = {}
    for name, module in peft_model.base_model.model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            out[f"{name}.lora_A"] = module.lora_A["default"].weight.detach().cpu().clone()
            out[f"{name}.lora_B"] = module.lora_B["default"].weight.detach().cpu().clone()
    return out


def expected_lora_shapes(model: nn.Module, spec: LoraSpec) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, linear in lora_targets(model, spec).items():
        shapes[f"{name}.lora_A"] = (spec.rank, linear.in_features)
        shapes[f"{name}.lora_B"] = (linear.out_features, spec.rank)
    return shapes


def merge_lora(model: nn.Module, tensors: dict[str, torch.Tensor], spec: LoraSpec, source: str) -> None:
    """W ← W + (alpha / rank)·B·A for every adapter, in place on a plain (PEFT-free) encoder."""
    targets = lora_targets(model, spec)
    expected = expected_lora_shapes(model, spec)
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise PreforchError(f"{source}: LoRA weights do not match the config (missing {missing[:3]}, unexpected "
                            f"{extra[:3]})")
    for key, shape in expected.items():
        t = tensors[key]
        if tuple(t.shape) != shape or not t.is_floating_point() or not t.isfinite().all():
            raise PreforchError(f"{source}: tensor {key!r} has shape {tuple(t.shape)} / dtype {t.dtype}, expected "
                                f"{shape}, finite floating point")
    with torch.no_grad():
        for name, linear in targets.items():
            a, b = tensors[f"{name}.lora_A"].float(), tensors[f"{name}.lora_B"].float()  # [r, in], [out, r]
            linear.weight += (spec.scale * (b @ a)).to(linear.weight.dtype, copy=False).to(linear.weight.device)


def lora_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def lower_states(model: nn.Module, spec: LoraSpec, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor) -> torch.Tensor:
    """Hidden states entering the first adapted layer (the frozen part's output). Shape: [N, T, D]."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                output_hidden_states=True)
    return out.hidden_states[num_layers(model) - spec.layers]


def top_layers_forward(model: nn.Module, spec: LoraSpec, states: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """The top ``spec.layers`` layers of ``model`` (plain or PEFT-wrapped) on cached lower states.
    Shapes: [N, T, D], [N, T] → [N, T, D]."""
    base = model.base_model.model if hasattr(model, "base_model") and hasattr(model.base_model, "model") else model
    mask = base._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                        embedding_output=states, encoder_hidden_states=None, cache=None)[0]
    for i in top_indices(base, spec):
        states = base.encoder.layer[i](states, mask)
    return states
