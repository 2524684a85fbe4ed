"""Write configs/tiny/align_normalizer.json (+ its .provenance.json): the z-score normaliser the tiny align configs
use, fitted on the replies (preferred and rejected) of 100 rows of each embedded example kind, scored by the two
rule scorers of those configs. Re-run after changing those scorers:

    PYTHONPATH=src python scripts/fit_tiny_normalizer.py
"""

from __future__ import annotations

import numpy as np

from preforch.atomic import write_json
from preforch.data.sources import load_data_setting
from preforch.provenance import make_provenance, provenance_path, scorer_records
from preforch.rewards.multi import MultiScorer
from preforch.rewards.normalize import Normalizer
from preforch.rewards.registry import build_scorers
from preforch.rewards.scoring import score_preference_data

SCORERS = [{"type": "rule", "name": "concise"}, {"type": "rule", "name": "sentiment", "objective": "positive"}]
DATA, PER_KIND = "embedded:example", 100
OUT = "configs/tiny/align_normalizer.json"


def main() -> None:
    data = load_data_setting(DATA, limit_per_kind=PER_KIND, seed=0)
    scorers = build_scorers(SCORERS)
    chosen, rejected = score_preference_data(data, MultiScorer(scorers), source=DATA)  # [N, K] each
    Normalizer([o for s in scorers for o in s.objectives]).fit(np.concatenate([chosen, rejected])).save(OUT)
    write_json(provenance_path(OUT), make_provenance(scorer_records(SCORERS, scorers), DATA, len(data)))
    print(f"wrote {OUT} and {provenance_path(OUT)} ({len(data)} rows of {DATA})")


if __name__ == "__main__":
    main()
