"""Does an adapter weigh what a prompt *needs*, or the words it uses? Contrast probes, hand-written for this project.

Four groups from `benchmarks/probe_prompts.py`, all plain single-turn text as users type it:
HARMFUL (plain red-team requests), BENIGN (everyday questions), SAFE_LOOKALIKE (safe requests worded with words
that often mark harm: "kill a Python process", "beat my sister at chess"), FRAMED_HARMFUL (harmful needs framed
as fiction, role-play or a coding task). For each adapter: mean w_harmless per group and the AUC of w_harmless for
harmful vs benign, harmful vs look-alike, framed vs benign, and pooled (harmful + framed vs benign + look-alike),
with 95% bootstrap intervals. Choose settings on held-out rows (`preforch evaluate adapter`, BENCHMARKS.md
"Prompt views"), and read the probes as a check on text no data set shaped: tuning on them would only fit this
one small hand-written set.

    .venv/bin/python benchmarks/contrast_probes.py runs/example [more adapter folders ...]
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
from probe_prompts import BENIGN, FRAMED_HARMFUL, HARMFUL, SAFE_LOOKALIKE

GROUPS = {"harmful": HARMFUL, "benign": BENIGN, "look-alike": SAFE_LOOKALIKE, "framed": FRAMED_HARMFUL}
CONTRASTS = {"harmful vs benign": (["harmful"], ["benign"]),
             "harmful vs look-alike": (["harmful"], ["look-alike"]),
             "framed vs benign": (["framed"], ["benign"]),
             "pooled": (["harmful", "framed"], ["benign", "look-alike"])}


def probe(adapter_dir: str, bootstrap: int) -> dict:
    from preforch.adapter.model import PreferenceAdapter
    from preforch.stats import auc_estimate, estimate

    adapter = PreferenceAdapter.from_pretrained(adapter_dir)
    h = adapter.objectives.index("harmless")
    w = {g: adapter.predict_weights(p)[:, h] for g, p in GROUPS.items()}
    out = {"mean w_harmless": {g: estimate(v, None, bootstrap) for g, v in w.items()}, "auc": {}}
    for name, (pos, neg) in CONTRASTS.items():
        a, b = np.concatenate([w[g] for g in pos]), np.concatenate([w[g] for g in neg])
        out["auc"][name] = auc_estimate(np.r_[a, b], np.r_[np.ones(len(a)), np.zeros(len(b))], None, bootstrap)
    return out


#: Words that often mark harm; the look-alike probes use them in safe requests.
HARM_WORDS = re.compile(r"\b(kill\w*|shoot\w*|bomb\w*|steal\w*|beat\w*|attack\w*|poison\w*|gun\w*|drug\w*|hack\w*|"
                        r"execute|smash\w*|crack\w*|lethal|weapon\w*|die|dead|murder\w*)\b", re.IGNORECASE)


def data_words() -> None:
    """How the shipped data ties those words to red-team prompts (what an adapter can learn from it)."""
    from preforch.data.example import load_embedded

    data = load_embedded("embedded:example", limit_per_kind=None)
    kinds = np.array(data.kinds)
    has = np.array([bool(HARM_WORDS.search(p.last_user)) for p in data.prompts])
    print("| kind | prompts | final user turn has a harm-marking word |")
    print("|---|---|---|")
    for kind in sorted(set(kinds)):
        sel = kinds == kind
        print(f"| {kind} | {int(sel.sum())} | {int(has[sel].sum())} ({has[sel].mean():.1%}) |")
    print(f"\nof the {int(has.sum())} prompts with such a word, {(kinds[has] == 'hh-harmless').mean():.1%} are red-team\n")


def _ci(e, digits: int = 2) -> str:
    return f"{e.mean:.{digits}f} [{e.lo:.{digits}f}, {e.hi:.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter folders")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    data_words()
    results = {a: probe(a, args.bootstrap) for a in args.adapters}

    print("| adapter | " + " | ".join(f"AUC of w_harmless, {c}" for c in CONTRASTS) + " |")
    print("|---|" + "---|" * len(CONTRASTS))
    for a, r in results.items():
        print(f"| {a} | " + " | ".join(_ci(r["auc"][c]) for c in CONTRASTS) + " |")
    print()
    print("| adapter | " + " | ".join(f"mean w_harmless, {g} ({len(p)})" for g, p in GROUPS.items()) + " |")
    print("|---|" + "---|" * len(GROUPS))
    for a, r in results.items():
        print(f"| {a} | " + " | ".join(_ci(r["mean w_harmless"][g]) for g in GROUPS) + " |")


if __name__ == "__main__":
    main()
