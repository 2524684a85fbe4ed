"""The adapter's network: standardised embeddings → MLP → weight logits (its own module, so the adapter's
artifact code and the uncertainty estimate both build it without importing each other)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AdapterMLP"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


class AdapterMLP(nn.Module):
    """Embeddings → weight logits. Shape: [N, D] → [N, K].

    Inputs are standardised per dimension with statistics of the training embeddings (buffers saved with
    the weights): sentence embeddings share a large common component, and a causal LM's hidden states
    have a few huge dimensions, either of which otherwise swamps the prompt-specific signal.
    """

    def __init__(self, dim: int, k: int, hidden: int, layers: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(dim))
        self.register_buffer("input_std", torch.ones(dim))
        blocks: list[nn.Module] = []
        width = dim
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, k))
        self.net = nn.Sequential(*blocks)

    def fit_input_stats(self, embeddings: torch.Tensor) -> None:
        """Set the standardisation from training embeddings. Shape: [N, D]."""
        self.input_mean.copy_(embeddings.mean(0))
        self.input_std.copy_(embeddings.std(0).clamp_min(1e-6) if len(embeddings) > 1 else torch.ones_like(self.input_std))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net((embeddings - self.input_mean) / self.input_std)  # [N, K] logits
