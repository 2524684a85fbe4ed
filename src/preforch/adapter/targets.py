"""Targets and losses. Shapes: N prompts, K objectives."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def target_weights(normalized_scores, tau: float = 1.0) -> np.ndarray:
    """w*(x) = softmax(s̃(x, y⁺) / τ). Shape: [N, K] → [N, K]."""
    s = torch.as_tensor(np.asarray(normalized_scores, dtype=np.float64))
    return torch.softmax(s / tau, dim=-1).numpy()


def forward_kl(log_w: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over prompts of KL(w* ‖ w(x)) = Σ_k w*_k (log w*_k − log w_k). Shapes: [N, K], [N, K] → []."""
    return (target * (torch.log(target.clamp_min(1e-12)) - log_w)).sum(-1).mean()


def reverse_kl(log_w: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over prompts of KL(w(x) ‖ w*). Shapes: [N, K], [N, K] → []."""
    return (log_w.exp() * (log_w - torch.log(target.clamp_min(1e-12)))).sum(-1).mean()


def pairwise_bt(log_w: torch.Tensor, delta: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Bradley–Terry on the scalarised margin: mean of −log σ(β·w(x)·(s̃⁺ − s̃⁻)), as ArmoRM trains its gate.

    Shapes: log_w [N, K], delta = s̃(x, y⁺) − s̃(x, y⁻) [N, K] → [].
    """
    margin = beta * (log_w.exp() * delta).sum(-1)  # [N]
    return F.softplus(-margin).mean()


def adapter_loss(kind: str, log_w: torch.Tensor, target: torch.Tensor, delta: torch.Tensor | None,
                 mix_weight: float = 0.5, beta: float = 1.0) -> torch.Tensor:
    """The configured training loss (see AdapterConfig.loss)."""
    if kind == "forward_kl":
        return forward_kl(log_w, target)
    if kind == "reverse_kl":
        return reverse_kl(log_w, target)
    if delta is None:
        raise ValueError(f"loss {kind!r} needs rejected responses with scores")
    if kind == "pairwise":
        return pairwise_bt(log_w, delta, beta)
    return (1.0 - mix_weight) * forward_kl(log_w, target) + mix_weight * pairwise_bt(log_w, delta, beta)


def entropy(w: torch.Tensor) -> torch.Tensor:
    """Entropy per row in nats. Shape: [N, K] → [N]."""
    return -(w * torch.log(w.clamp_min(1e-12))).sum(-1)
