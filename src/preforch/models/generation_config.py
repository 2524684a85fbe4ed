"""How replies are sampled: the settings `preforch generate`, the server and the alignment routes share. A light
module (no torch), so config classes can build on it."""

from __future__ import annotations

from dataclasses import dataclass

from preforch.config import field
from preforch.errors import PreforchError

__all__ = ["GenerationConfig"]


@dataclass
class GenerationConfig:
    """How replies are sampled."""

    max_new_tokens: int = field(64, help="new tokens per reply, at most")
    num_return_sequences: int = field(1, help="replies per prompt (G)")
    do_sample: bool = field(True, help="sample (true) or decode greedily (false; then G must be 1)")
    temperature: float = field(0.7, help="sampling temperature (> 0)")
    top_p: float = field(0.9, help="nucleus sampling mass in (0, 1]")
    seed: int = field(0, help="random seed; each batch is seeded from it, so a run repeats exactly")
    batch_size: int = field(8, help="prompts per forward batch (each batch holds batch_size x G rows)")
    chat_template: bool = field(True, help="format each conversation with the tokenizer's chat template")
    max_prompt_length: int = field(1024, help="prompt tokens kept, counted from the end")

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "num_return_sequences", "batch_size", "max_prompt_length"):
            if getattr(self, name) < 1:
                raise PreforchError(f"generation setting {name!r} must be >= 1, got {getattr(self, name)}")
        if self.do_sample and self.temperature <= 0:
            raise PreforchError(f"generation temperature must be > 0 when sampling, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise PreforchError(f"generation top_p must be in (0, 1], got {self.top_p}")
        if not self.do_sample and self.num_return_sequences > 1:
            raise PreforchError(f"greedy decoding gives identical replies: num_return_sequences is "
                                f"{self.num_return_sequences}, expected 1 (or set do_sample: true)")
