"""How often does the served floor fire, and what does it stop? (issue 22, part 4)

The embedded SmolLM2 policy answers held-out prompts of the main job's test split (prompts no reward head and no
adapter trained on): ``--n`` HH-RLHF harmless red-team prompts and ``--n`` benign ones (HH-RLHF helpful and
UltraFeedback, alternating). Best-of-N candidates are generated once, scored by the built-in reward models and
weighted with the main job's adapter (runs/example); each floor setting is then applied to the same candidates.
For each min_score: the share of prompts where the floor fires (no candidate passes, the floor's reply is served)
on harmful and on benign prompts, and the share of harmful prompts whose served reply the harmless head still
scores below the floor (a floor-passing reply, or one served because w_harmless did not exceed the share).

    PYTHONPATH=src .venv/bin/python benchmarks/serve_floor.py --adapter runs/example --n 24
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def held_out_prompts(adapter_dir: str, n: int) -> tuple[list, list]:
    from preforch.adapter import PreferenceAdapter
    from preforch.data.split import split_by_prompt
    from preforch.recipes.adapter_train import TrainAdapterJob, load_job_data

    adapter = PreferenceAdapter.from_pretrained(adapter_dir)
    cfg = adapter.config
    data = load_job_data(TrainAdapterJob(limit_per_kind=500, seed=cfg.seed))
    test = split_by_prompt(data.prompts, cfg.val_fraction, cfg.test_fraction, cfg.seed).test
    harmful = [data.prompts[i] for i in test if data.kinds[i] == "hh-harmless"][:n]
    helpful = [data.prompts[i] for i in test if data.kinds[i] == "hh-helpful"]
    tasks = [data.prompts[i] for i in test if data.kinds[i] == "ultrafeedback"]
    benign = [p for pair in zip(helpful, tasks) for p in pair][:n]
    return harmful, benign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="runs/example")
    parser.add_argument("--n", type=int, default=24, help="harmful and benign prompts each")
    parser.add_argument("--best-of", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    from preforch.adapter import PreferenceAdapter
    from preforch.infer.best_of_n import best_of_n
    from preforch.infer.floor import choose_with_floor, floor_passes
    from preforch.models.generation import GenerationConfig, load_policy
    from preforch.rewards.multi import MultiScorer
    from preforch.rewards.registry import build_scorers
    from preforch.stats import estimate

    harmful, benign = held_out_prompts(args.adapter, args.n)
    adapter = PreferenceAdapter.from_pretrained(args.adapter)
    scorer = MultiScorer(build_scorers([{"type": "builtin"}]))
    policy = load_policy(None)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=True, temperature=0.7, top_p=0.9, seed=0,
                           batch_size=8)
    started = time.perf_counter()
    out = best_of_n(harmful + benign, (policy.model, policy.tokenizer), scorer, args.best_of, adapter=adapter,
                    generation=gen, return_candidates=True)
    seconds = time.perf_counter() - started
    h = adapter.objectives.index("harmless")
    is_harm = np.r_[np.ones(len(harmful), bool), np.zeros(len(benign), bool)]
    print(f"{len(harmful)} harmful + {len(benign)} benign held-out prompts, best-of-{args.best_of}, "
          f"{args.max_new_tokens} new tokens, {seconds:.0f}s; mean w_harmless harmful "
          f"{out.weights[is_harm, h].mean():.3f}, benign {out.weights[~is_harm, h].mean():.3f}; floor share "
          f"{args.share}")
    served = out.best_normalized_scores[:, h]  # [N], floor off
    print("| min_score | floor fires, harmful | floor fires, benign | harmful: served reply below the floor "
          "(floor off) | harmful: served reply below the floor (floor on) |")
    print("|---|---|---|---|---|")
    for min_score in (-1.5, -1.0, -0.5, 0.0):
        passes = floor_passes(out.normalized_scores, out.weights, min_score, args.share)  # [N, G]
        best, floored = choose_with_floor(out.rewards, passes)  # [N], [N]
        chosen = out.normalized_scores[np.arange(len(best)), best, h]  # [N]
        below_on = (~floored) & (chosen < min_score)
        cells = [estimate(floored[is_harm].astype(float), None, args.bootstrap),
                 estimate(floored[~is_harm].astype(float), None, args.bootstrap),
                 estimate((served[is_harm] < min_score).astype(float), None, args.bootstrap),
                 estimate(below_on[is_harm].astype(float), None, args.bootstrap)]
        print(f"| {min_score:+.1f} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
