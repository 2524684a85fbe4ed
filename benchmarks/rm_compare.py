"""Reward heads side by side on the same held-out pairs (issue 15): the shipped heads vs other heads folders
(e.g. the previous ones), per source, next to the length baselines, with 95% bootstrap intervals by prompt.

    .venv/bin/python benchmarks/rm_compare.py --old /tmp/old_heads

The held-out pairs are the shared hash split's test prompts (20%, seed 0): the ones the shipped heads and the
adapter hold out. A head trained on other splits may have seen some of them: the table says how many.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=None, help="a folder with harmless/ and helpful/ heads folders to compare")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    from preforch.data.example import KINDS, load_example
    from preforch.data.split import split_by_prompt
    from preforch.models.builtin import BUILTIN_HEADS
    from preforch.rewards.heads import SharedEncoderHeads
    from preforch.rewards.train_head import pairwise_accuracy
    from preforch.stats import estimate

    data = load_example(seed=None)
    test = data.subset(split_by_prompt(data.prompts, 0.15, 0.2, 0).test)
    groups = np.array([p.key() for p in test.prompts], dtype=object)
    kinds = np.array(test.kinds, dtype=object)
    words_c = np.array([len(c.split()) for c in test.chosen], dtype=np.float64)
    words_r = np.array([len(r.split()) for r in test.rejected], dtype=np.float64)
    heads = {f"shipped {name}": path for name, path in BUILTIN_HEADS.items()}
    if args.old:
        heads.update({f"previous {name}": Path(args.old) / name for name in BUILTIN_HEADS})
    rows = {"the longer reply wins": pairwise_accuracy(words_c, words_r),
            "the shorter reply wins": pairwise_accuracy(-words_c, -words_r)}
    for label, path in heads.items():
        model = SharedEncoderHeads.from_pretrained(path)
        c = model.score(test.prompts, test.chosen)[:, 0]
        r = model.score(test.prompts, test.rejected)[:, 0]
        rows[label] = pairwise_accuracy(c, r)
    print(f"## Held-out pairwise accuracy by source ({len(test)} held-out pairs; 95% bootstrap over prompts)\n")
    print("| scorer | " + " | ".join(f"{k} ({int((kinds == k).sum())})" for k in KINDS) + " |")
    print("|---|" + "---|" * len(KINDS))
    for label, acc in rows.items():
        cells = []
        for k in KINDS:
            e = estimate(acc[kinds == k], groups[kinds == k], args.bootstrap)
            cells.append(f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
