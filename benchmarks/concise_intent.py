"""Can the shipped data teach "the user asked for a short answer"? Counts in the data, and an adapter's weights.

Two measurements, both printed as tables:

1. **The data.** Prompts of the embedded example whose final user turn asks for brevity in so many words
   ("briefly", "in one sentence", "keep it short", "tl;dr", ...), per kind, and how often the preferred reply of
   such a pair is the shorter one (the conciseness objective's direction), with a 95% bootstrap interval. If the
   preferred reply is not shorter on those pairs, no loss can learn "brevity asked → weight conciseness".
2. **An adapter** (default `runs/example`, the main job's): w_concise on the hand-written brevity requests of
   `benchmarks/probe_prompts.py` (BREVITY) against the same questions asked plainly (BENIGN): means, and the AUC
   of w_concise separating the two groups, with 95% bootstrap intervals.

    .venv/bin/python benchmarks/concise_intent.py --adapter runs/example
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_prompts import BENIGN, BREVITY

#: Words that ask for a short answer. Matched on the final user turn only.
BREVITY_CUE = re.compile(
    r"\b(briefly|brief|concise(ly)?|succinct(ly)?|short answer|keep it short|tl;?dr|few words|one[- ]word|"
    r"in (one|a single|two|three|a few) (word|sentence|line|paragraph)s?|summari[sz]e|just the \w+)\b", re.IGNORECASE)


def data_table(bootstrap: int) -> list[dict]:
    from preforch.data.example import load_embedded
    from preforch.stats import estimate

    data = load_embedded("embedded:example", limit_per_kind=None)
    rows = []
    kinds = np.array(data.kinds)
    asks = np.array([bool(BREVITY_CUE.search(p.last_user)) for p in data.prompts])
    shorter = np.array([len(c) < len(r) for c, r in zip(data.chosen, data.rejected)], dtype=float)
    for kind in sorted(set(kinds)):
        for cue in (True, False):
            sel = (kinds == kind) & (asks == cue)
            if sel.any():
                rows.append({"kind": kind, "asks for brevity": cue, "pairs": int(sel.sum()),
                             "preferred reply is shorter": estimate(shorter[sel], None, bootstrap)})
    sel = asks
    rows.append({"kind": "all", "asks for brevity": True, "pairs": int(sel.sum()),
                 "preferred reply is shorter": estimate(shorter[sel], None, bootstrap)})
    return rows


def adapter_table(adapter_dir: str, bootstrap: int) -> dict:
    from preforch.adapter.model import PreferenceAdapter
    from preforch.stats import auc_estimate, estimate

    adapter = PreferenceAdapter.from_pretrained(adapter_dir)
    if "concise" not in adapter.objectives:
        raise SystemExit(f"{adapter_dir}: the adapter has no 'concise' objective ({adapter.objectives})")
    c = adapter.objectives.index("concise")
    brief, plain = adapter.predict_weights(BREVITY)[:, c], adapter.predict_weights(BENIGN)[:, c]
    labels = np.r_[np.ones(len(brief)), np.zeros(len(plain))]
    return {"w_concise, brevity asked": estimate(brief, None, bootstrap),
            "w_concise, same questions plainly": estimate(plain, None, bootstrap),
            "AUC of w_concise, brevity vs plain": auc_estimate(np.r_[brief, plain], labels, None, bootstrap)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="runs/example", help="adapter folder with a 'concise' objective")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()

    print("| kind | asks for brevity | pairs | preferred reply is the shorter one |")
    print("|---|---|---|---|")
    for row in data_table(args.bootstrap):
        e = row["preferred reply is shorter"]
        print(f"| {row['kind']} | {'yes' if row['asks for brevity'] else 'no'} | {row['pairs']} | "
              f"{e.mean:.2f} [{e.lo:.2f}, {e.hi:.2f}] |")
    print()
    print(f"adapter {args.adapter}, {len(BREVITY)} brevity requests vs {len(BENIGN)} plain questions:")
    print("| measure | value |")
    print("|---|---|")
    for name, e in adapter_table(args.adapter, args.bootstrap).items():
        print(f"| {name} | {e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}] |")


if __name__ == "__main__":
    main()
