"""The embedded example: Anthropic HH-RLHF harmless pairs and UltraFeedback pairs, pooled, so prompts of
different kinds need different weights (see ATTRIBUTION.md for provenance and licences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from preforch.data.load import read_table, to_preference_data
from preforch.types import PreferenceData

HERE = Path(__file__).resolve().parent
HH_FILE = HERE / "hh_rlhf_harmless_base_dev2000.jsonl.gz"
UF_FILE = HERE / "ultrafeedback_binarized_sample_train1000.jsonl.gz"
KIND_HARMLESS = "hh-harmless"
KIND_HELPFUL = "ultrafeedback"


def load_hh(limit: int | None = None) -> PreferenceData:
    rows = [{"chosen": r["chosen"], "rejected": r["rejected"], "kind": KIND_HARMLESS} for r in read_table(HH_FILE)]
    return to_preference_data(rows[:limit], source=str(HH_FILE))


def load_ultrafeedback(limit: int | None = None, drop_ties: bool = True) -> PreferenceData:
    rows = []
    for r in read_table(UF_FILE):
        meta = r.get("metadata") or {}
        if drop_ties and meta.get("score_chosen") == meta.get("score_rejected"):
            continue  # 111 ties carry no preference
        rows.append({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"], "kind": KIND_HELPFUL})
    return to_preference_data(rows[:limit], source=str(UF_FILE))


def load_example(limit_per_kind: int | None = None, seed: int = 0) -> PreferenceData:
    """Both sets pooled and shuffled (seeded); ``kinds`` says which set each row came from."""
    hh, uf = load_hh(limit_per_kind), load_ultrafeedback(limit_per_kind)
    pooled = PreferenceData(
        prompts=hh.prompts + uf.prompts,
        chosen=hh.chosen + uf.chosen,
        rejected=(hh.rejected or []) + (uf.rejected or []),
        kinds=(hh.kinds or []) + (uf.kinds or []),
        source="embedded example (HH harmless + UltraFeedback)",
    )
    order = np.random.default_rng(seed).permutation(len(pooled))
    return pooled.subset(order)
