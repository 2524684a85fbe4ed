"""The embedded benchmark of issue 5: on the pooled example data (HH harmless + UltraFeedback), split by
prompt, the adapter's pairwise accuracy against uniform and the best fixed weights (chosen on the training
split), per prompt kind and pooled; then best-of-N (N = 4, 8) with SmolLM2 candidates generated once and
cached, under adapter weights vs uniform vs the best fixed weights. Prints Markdown tables.

    python benchmarks/eval_embedded.py [--limit-per-kind 1000] [--bon-prompts 64] [--max-new-tokens 64]

Needs the built-in reward heads (preforch.models.builtin) and the embedded SmolLM2 policy. Candidates and
scores are cached under --work (default runs/bench_eval).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-per-kind", type=int, default=None)
    parser.add_argument("--bon-prompts", type=int, default=32, help="test prompts for best-of-N")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--resolution", type=int, default=10)
    parser.add_argument("--work", default="runs/bench_eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rm-heldout", action="store_true",
                        help="test only on the pairs the built-in reward heads held out (their configs' split), and "
                             "train the adapter on the rest, so no test pair was seen by a reward model")
    parser.add_argument("--skip-best-of-n", action="store_true", help="pairwise accuracy only")
    args = parser.parse_args()
    work = Path(args.work)

    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.data.example import load_example
    from preforch.evaluate.adapter_eval import evaluate_adapter_arrays, predict_once
    from preforch.evaluate.metrics import select_best
    from preforch.rewards.builtin import BUILTIN_HEADS, load_builtin_scorer

    missing = [str(p) for p in BUILTIN_HEADS.values() if not (p / "model.safetensors").is_file()]
    if missing:
        raise SystemExit(f"built-in reward heads not found ({missing}); train them first (configs/rm_*.yaml)")
    data = load_example(args.limit_per_kind, seed=args.seed)
    from preforch.rewards.cache import ScoreCache
    from preforch.rewards.multi import MultiScorer

    # The project's score cache keys on the scorer's identity, so new reward heads never reuse stale scores.
    scorer = MultiScorer([load_builtin_scorer()], batch_size=64, cache=ScoreCache(), progress=True)
    t0 = time.perf_counter()
    data.objectives = list(scorer.objectives)
    data.scores_chosen = scorer.score(data.prompts, data.chosen)  # [N, K]
    data.scores_rejected = scorer.score(data.prompts, data.rejected)  # [N, K]
    print(f"scored {2 * len(data)} responses in {time.perf_counter() - t0:.0f} s (score cache: {scorer.hits} hits)")
    if args.rm_heldout:
        held = rm_heldout_prompts()
        is_test = np.array([p in held for p in data.prompts])
        tr, te = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        adapter = train_adapter(AdapterConfig(seed=args.seed), data.subset(tr), progress=False).adapter
    else:
        result = train_adapter(AdapterConfig(seed=args.seed), data, progress=False)
        adapter, tr, te = result.adapter, result.train_index, result.val_index
    norm = adapter.normalizer
    s_c, s_r = norm.transform(data.scores_chosen), norm.transform(data.scores_rejected)  # [N, K]
    from preforch.adapter import target_weights

    weights = predict_once(adapter, [data.prompts[i] for i in te])  # [N_test, K]
    kinds = data.kinds
    ev = evaluate_adapter_arrays(adapter.objectives, weights, target_weights(s_c[te], adapter.config.tau),
                                 train_chosen=s_c[tr], train_rejected=s_r[tr], test_chosen=s_c[te],
                                 test_rejected=s_r[te], train_kinds=[kinds[i] for i in tr],
                                 test_kinds=[kinds[i] for i in te], resolution=args.resolution)
    print(f"\n## Pairwise accuracy on held-out pairs ({len(tr)} train / {len(te)} test rows, split by prompt)\n")
    print(f"Best fixed (chosen on train): {ev.best_fixed_weights}; objectives {adapter.objectives}\n")
    print("| group | pairs | adapter | uniform | best fixed | adapter − best fixed |\n|---|---|---|---|---|---|")
    for name, r in ev.pairwise.items():
        print(f"| {name} | {r.n_pairs} | {r.adapter:.3f} | {r.uniform:.3f} | {r.best_fixed:.3f} | "
              f"{r.adapter - r.best_fixed:+.3f} |")
    if not args.skip_best_of_n:
        best_of_n(args, work, adapter, data, te, scorer, np.asarray(ev.best_fixed_weights), select_best)


def rm_heldout_prompts() -> set[str]:
    """Prompts of the pairs held out when the built-in heads were trained (configs/rm_{harmless,helpful}.yaml)."""
    from preforch.config import build_config
    from preforch.recipes.rm_train import RMTrainConfig, load_pairs
    from preforch.rewards.train_head import split_by_prompt

    held: set[str] = set()
    for name in ("rm_harmless.yaml", "rm_helpful.yaml"):
        config = build_config(RMTrainConfig, Path(__file__).resolve().parents[1] / "configs" / name)
        pairs = load_pairs(config.data)
        split = split_by_prompt(pairs.prompts, config.heldout_fraction, config.val_fraction, config.seed)
        held |= {pairs.prompts[i] for i in split["heldout"]}
    return held


def best_of_n(args, work: Path, adapter, data, te, scorer, best_fixed: np.ndarray, select_best) -> None:
    from preforch.evaluate.adapter_eval import predict_once
    from preforch.models.generation import generate, load_policy

    rng = np.random.default_rng(args.seed)
    per_kind = {k: [i for i in te if data.kinds[i] == k] for k in sorted(set(data.kinds))}
    take = [i for k in per_kind for i in rng.permutation(per_kind[k])[: args.bon_prompts // len(per_kind)]]
    prompts, kinds = [data.prompts[i] for i in take], [data.kinds[i] for i in take]
    cache = work / f"candidates_{len(take)}_{args.seed}_{args.max_new_tokens}.jsonl"
    if cache.is_file():
        candidates = [json.loads(line)["candidates"] for line in cache.read_text().splitlines()]
    else:
        t0 = time.perf_counter()
        policy = load_policy(None)
        candidates = generate(policy.model, policy.tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                              num_return_sequences=8, seed=args.seed, progress=True)
        print(f"generated {8 * len(prompts)} candidates in {time.perf_counter() - t0:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps({"prompt": p, "candidates": c}) + "\n" for p, c in zip(prompts, candidates)))
    flat_p = [p for p, c in zip(prompts, candidates) for _ in c]
    raw = scorer.score(flat_p, [y for c in candidates for y in c])  # [P * 8, K]
    k = len(adapter.objectives)
    s = adapter.normalizer.transform(raw).reshape(len(prompts), 8, k)  # [P, 8, K]
    w = predict_once(adapter, prompts)  # [P, K]
    print(f"\n## Best-of-N with SmolLM2 candidates ({len(prompts)} held-out prompts): mean normalised reward of the "
          f"pick, and mean R under the adapter's weights\n")
    print("| N | group | weighting | " + " | ".join(adapter.objectives) + " | R_adapter |\n|---|---|---|"
          + "---|" * (k + 1))
    rows = np.arange(len(prompts))
    for n in (4, 8):
        sub = s[:, :n]
        picks = {"adapter": select_best(sub, w), "uniform": select_best(sub, np.full(k, 1 / k)),
                 "best fixed": select_best(sub, best_fixed)}
        for group in ["all", *sorted(set(kinds))]:
            idx = rows if group == "all" else rows[np.asarray(kinds) == group]
            for name, pick in picks.items():
                chosen = sub[idx, pick[idx]]  # [n_g, K]
                r = (w[idx] * chosen).sum(1).mean()
                print(f"| {n} | {group} | {name} | " + " | ".join(f"{x:.3f}" for x in chosen.mean(0)) + f" | {r:.3f} |")


if __name__ == "__main__":
    main()
