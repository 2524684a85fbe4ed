"""Reward heads side by side on the same held-out pairs: each kind's pairs scored by the head of the objective that
decides that kind (harmless for HH harmless, helpful for the rest), next to the length rules, with 95% bootstrap
intervals by prompt, the paired difference of the first two heads sources, and each source's scoring throughput
measured in the same run.

    .venv/bin/python benchmarks/rm_compare.py --heads new=src/preforch/models/builtin/heads \
        --heads old=/tmp/old_builtin/harmless,/tmp/old_builtin/helpful

The held-out pairs are the shared hash split's test prompts (20%, seed 0, over all four embedded kinds): the ones
the shipped heads and the adapter hold out.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET = {"hh-harmless": "harmless", "hh-helpful": "helpful", "ultrafeedback": "helpful", "coconot": "helpful"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", action="append", default=[],
                        help="LABEL=FOLDER[,FOLDER]: heads folders scored as one (default: the shipped heads)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=None, help="held-out pairs per kind (quick runs)")
    parser.add_argument("--split", choices=["test", "val"], default="test",
                        help="score the held-out (test) pairs, or the validation pairs (to choose between heads)")
    args = parser.parse_args()

    from preforch.data.example import ALL_KINDS, load_example
    from preforch.data.split import split_by_prompt
    from preforch.models.builtin import BUILTIN_HEADS
    from preforch.rewards.heads import SharedEncoderHeads
    from preforch.rewards.train_head import pairwise_accuracy
    from preforch.stats import estimate, paired_difference

    data = load_example(seed=None, kinds=ALL_KINDS)
    test = data.subset(getattr(split_by_prompt(data.prompts, 0.15, 0.2, 0), args.split))
    if args.limit:
        keep = np.concatenate([np.flatnonzero(np.array(test.kinds) == k)[: args.limit] for k in ALL_KINDS])
        test = test.subset(np.sort(keep))
    groups = np.array([p.key() for p in test.prompts], dtype=object)
    kinds = np.array(test.kinds, dtype=object)
    sources = dict(h.split("=", 1) for h in args.heads) or {
        "shipped": ",".join(sorted({str(p) for p in BUILTIN_HEADS.values()}))}
    words_c = np.array([len(c.split()) for c in test.chosen], dtype=np.float64)
    words_r = np.array([len(r.split()) for r in test.rejected], dtype=np.float64)
    rows = {"the longer reply wins": pairwise_accuracy(words_c, words_r),
            "the shorter reply wins": pairwise_accuracy(-words_c, -words_r)}
    speed, every = {}, {}
    for label, folders in sources.items():
        model = SharedEncoderHeads.from_folders(folders.split(","))
        t0 = time.perf_counter()
        c = model.score(test.prompts, test.chosen)  # [N, K]
        r = model.score(test.prompts, test.rejected)
        speed[label] = 2 * len(test) / (time.perf_counter() - t0)
        col = np.array([model.objectives.index(TARGET[k]) for k in kinds])
        rows[label] = pairwise_accuracy(c[np.arange(len(test)), col], r[np.arange(len(test)), col])
        for j, objective in enumerate(model.objectives):
            every[f"{label} {objective}"] = pairwise_accuracy(c[:, j], r[:, j])
    side = "Held-out" if args.split == "test" else "Validation"
    print(f"## {side} pairwise accuracy, each kind by its deciding objective ({len(test)} pairs; 95% bootstrap "
          "over prompts)\n")
    print("| scorer | " + " | ".join(f"{k} ({int((kinds == k).sum())}, {TARGET[k]})" for k in ALL_KINDS) + " |")
    print("|---|" + "---|" * len(ALL_KINDS))
    for label, acc in rows.items():
        cells = [f"{estimate(acc[kinds == k], groups[kinds == k], args.bootstrap):.3f}" for k in ALL_KINDS]
        print(f"| {label} | " + " | ".join(cells) + " |")
    labels = list(sources)
    compare = [(labels[0], labels[1])] if len(labels) > 1 else []
    compare += [(labels[0], "the longer reply wins")]
    for a, b in compare:
        cells = []
        for k in ALL_KINDS:
            d = paired_difference(rows[a][kinds == k], rows[b][kinds == k], groups[kinds == k], args.bootstrap)
            cells.append(f"{d.mean:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] p={d.p_value:.3f}")
        print(f"| {a} − {b} | " + " | ".join(cells) + " |")
    print("\n## Every head on every kind (a head on a kind another objective decides shows how its signals overlap)\n")
    print("| head | " + " | ".join(ALL_KINDS) + " |")
    print("|---|" + "---|" * len(ALL_KINDS))
    for label, acc in every.items():
        print(f"| {label} | " + " | ".join(f"{acc[kinds == k].mean():.3f}" for k in ALL_KINDS) + " |")
    print("\nscoring throughput (responses/s, same run): " + ", ".join(f"{k} {v:.1f}" for k, v in speed.items()))


if __name__ == "__main__":
    main()
