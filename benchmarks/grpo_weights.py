"""Does GRPO with the adapter's per-prompt weights beat GRPO with fixed weights? (issue 4)

Same policy (embedded SmolLM2 + LoRA), same GRPO steps, same seeds, same training prompts; only the weights
differ: the adapter's w(x), uniform, and one-hot per objective. Every trained policy (and the untrained one)
answers held-out prompts; the table gives the mean normalised score per objective and the mean
adapter-weighted reward R = Σ_k w_k(x)·s̃_k (the quantity PRO claims to improve).

    python benchmarks/grpo_weights.py --adapter runs/adapter          # an adapter over the built-in objectives
    python benchmarks/grpo_weights.py                                 # trains a small adapter first

Defaults are sized for a 2-core CPU (~10-15 min). Results go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def split_prompts(n_train: int, n_eval: int, seed: int) -> tuple[list, list]:
    """Distinct prompts, half from each source set, disjoint between training and evaluation."""
    from preforch.data.example import load_example

    ex = load_example(seed=seed)
    by_kind: dict[str, list[str]] = {}
    for p, k in zip(ex.prompts, ex.kinds or []):
        if len(p.text()) < 400 and p not in by_kind.setdefault(k, []):
            by_kind[k].append(p)
    train, held = [], []
    for prompts in by_kind.values():
        train += prompts[: n_train // len(by_kind)]
        held += prompts[n_train // len(by_kind): n_train // len(by_kind) + n_eval // len(by_kind)]
    return train, held


def train_small_adapter(scorer, rows: int, seed: int, out: Path):
    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.data.example import load_example
    from preforch.rewards.scoring import score_preference_data

    data = load_example(rows // 2, seed=seed + 1)
    chosen, _ = score_preference_data(data, scorer)
    data.objectives, data.scores_chosen = list(scorer.objectives), chosen
    result = train_adapter(AdapterConfig(epochs=60, seed=seed), data, progress=False)
    result.adapter.save_pretrained(out, overwrite=True)
    return result.adapter


def evaluate(model, tokenizer, prompts, scorer, adapter, max_new_tokens, seed) -> dict[str, float]:
    from preforch.models.generation import generate

    replies = [r[0] for r in generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed,
                                      temperature=0.7)]
    s = adapter.normalizer.transform(scorer.score(prompts, replies)).astype(np.float64)  # [N, K]
    w = adapter.predict_weights(prompts)  # [N, K]
    out = {name: float(s[:, k].mean()) for k, name in enumerate(adapter.objectives)}
    out["R_adapter"] = float((w * s).sum(1).mean())
    out["words"] = float(np.mean([len(r.split()) for r in replies]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", help="adapter folder (objectives must equal the scorer's); default: train one")
    ap.add_argument("--adapter-rows", type=int, default=300)
    ap.add_argument("--train-prompts", type=int, default=16)
    ap.add_argument("--eval-prompts", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--max-completion", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--work", default=None, help="folder for runs (default: a temporary folder)")
    args = ap.parse_args()

    from preforch.adapter import PreferenceAdapter
    from preforch.align.config import GRPOJob
    from preforch.align.grpo import run_rl
    from preforch.models.generation import load_policy
    from preforch.rewards.builtin import load_builtin_scorer
    from preforch.rewards.multi import MultiScorer

    t0 = time.perf_counter()
    work = Path(args.work or tempfile.mkdtemp(prefix="grpo_weights_"))
    scorer = MultiScorer([load_builtin_scorer()], batch_size=64)
    adapter = (PreferenceAdapter.from_pretrained(args.adapter) if args.adapter
               else train_small_adapter(scorer, args.adapter_rows, 0, work / "adapter"))
    adapter_dir = args.adapter or str(work / "adapter")
    k = len(adapter.objectives)
    schemes = {"adapter w(x)": ("adapter", None), "uniform": ("fixed", [1.0] * k)}
    schemes.update({f"one-hot {o}": ("fixed", list(np.eye(k)[i])) for i, o in enumerate(adapter.objectives)})
    rows: dict[str, list[dict]] = {}
    for seed in args.seeds:
        train, held = split_prompts(args.train_prompts, args.eval_prompts, seed)
        model, tok = load_policy(None)
        rows.setdefault("untrained", []).append(
            evaluate(model, tok, held, scorer, adapter, args.max_completion, seed))
        for name, (mode, user) in schemes.items():
            job = GRPOJob(policy=None, adapter=adapter_dir, weight_mode=mode, user_weights=user, lora=True,
                          learning_rate=args.lr, max_steps=args.steps, per_device_train_batch_size=8,
                          num_generations=args.num_generations, max_completion_length=args.max_completion,
                          seed=seed, save_steps=10_000, progress=False, overwrite=True,
                          output_dir=str(work / f"{name.replace(' ', '_')}_{seed}"))
            start = time.perf_counter()
            result = run_rl(job, scorer=scorer, adapter=adapter, policy=load_policy(None), prompts=train)
            model = result.trainer.model.merge_and_unload() if hasattr(result.trainer.model, "merge_and_unload") \
                else result.trainer.model
            metrics = evaluate(model.eval(), tok, held, scorer, adapter, args.max_completion, seed)
            metrics["seconds"] = time.perf_counter() - start
            rows.setdefault(name, []).append(metrics)
            print(f"seed {seed} {name}: {metrics}", flush=True)
    cols = [*adapter.objectives, "R_adapter", "words"]
    print(f"\nGRPO weights benchmark: {args.steps} steps x {args.train_prompts} prompts x G={args.num_generations}, "
          f"{args.eval_prompts} held-out prompts, seeds {args.seeds}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; wall {time.perf_counter() - t0:.0f} s")
    print("| weights | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, results in rows.items():
        means = [np.mean([r[c] for r in results]) for c in cols]
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
