"""Issue 7, target 5: the share of a GRPO step spent computing rewards (scoring + weighting), on the embedded
policy (SmolLM2-135M-Instruct, LoRA) through the project's align code (``preforch.align.grpo.run_rl``).

The reward function's calls are timed by a wrapper around ``ScalarizedReward.__call__`` (the one TRL reward
callable: K = 3 scores, normalisation, Σ_k w_k·s̃_k); the step time comes from a TrainerCallback
(on_step_begin → on_step_end). The first step is a warm-up and is left out. Prints one table.

    .venv/bin/python benchmarks/perf_grpo.py [--steps 4] [--prompts 8] [--completion 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import perf_common as pc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps (the first is a warm-up)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt (G)")
    parser.add_argument("--batch", type=int, default=8, help="completions per step")
    parser.add_argument("--completion", type=int, default=32, help="max new tokens per completion")
    parser.add_argument("--max-prompt-chars", type=int, default=400, help="use example prompts this short")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--policy", default=None, help="policy folder (default: the embedded SmolLM2)")
    args = parser.parse_args()
    import numpy as np
    from transformers import TrainerCallback

    from preforch.align import rewards as rewards_mod
    from preforch.align.config import GRPOJob
    from preforch.align.grpo import run_rl
    from preforch.data.example import load_example
    from preforch.models.generation import load_policy
    from preforch.models.policy import prepare_policy
    from preforch.rewards.multi import MultiScorer
    from preforch.rewards.normalize import Normalizer
    from preforch.rewards.rules import ConcisenessScorer

    threads = pc.set_threads(args.threads)

    builtin = pc.builtin_available()
    if builtin:
        from preforch.rewards.builtin import load_builtin_scorer

        scorer, what = load_builtin_scorer(), "built-in scorer (harmless + helpful heads on MiniLM, concise rule)"
    else:
        heads = pc.three_heads()
        heads.config.heads = heads.config.heads[:2]  # harmless + helpful heads, plus the conciseness rule
        heads.heads = type(heads.heads)({h.objective: heads.heads[h.objective] for h in heads.config.heads})
        scorer = MultiScorer([heads, ConcisenessScorer("concise")], batch_size=64)
        what = "random heads (harmless, helpful) on MiniLM + concise rule (built-in weights not shipped yet)"
    k = len(scorer.objectives)
    prompts = [p for p in load_example().prompts if len(p.text()) <= args.max_prompt_chars][: args.prompts]

    reward_calls: list[tuple[float, float, int]] = []  # (start, seconds, completions)
    original = rewards_mod.ScalarizedReward.__call__

    def timed_call(self, *args_, **kwargs):  # TRL passes prompts= and completions= as keywords
        t0 = time.perf_counter()
        out = original(self, *args_, **kwargs)
        reward_calls.append((t0, time.perf_counter() - t0, len(out)))
        return out

    steps: list[tuple[float, float]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self._t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            steps.append((self._t0, time.perf_counter()))

    rewards_mod.ScalarizedReward.__call__ = timed_call
    try:
        with tempfile.TemporaryDirectory(prefix="perf_grpo_") as tmp:
            norm = Path(tmp) / "normalizer.json"
            Normalizer(list(scorer.objectives)).fit(np.random.default_rng(0).normal(size=(32, k))).save(norm)
            job = GRPOJob(policy=args.policy, weight_mode="fixed", user_weights=[1.0 / k] * k, normalizer=str(norm),
                          lora=True, max_steps=args.steps, per_device_train_batch_size=args.batch,
                          num_generations=args.generations, max_completion_length=args.completion,
                          save_steps=10_000, output_dir=str(Path(tmp) / "run"), progress=False, seed=0)
            policy = load_policy(args.policy or str(prepare_policy()))
            result = run_rl(job, scorer=scorer, policy=policy, prompts=prompts, callbacks=[StepTimer()])
    finally:
        rewards_mod.ScalarizedReward.__call__ = original
    if len(steps) != args.steps or not reward_calls:
        raise pc.BrokenRun(f"{len(steps)} steps timed (expected {args.steps}), {len(reward_calls)} reward calls")
    rows, shares, step_s, reward_s = [], [], [], []
    for i, (begin, end) in enumerate(steps):
        inside = [(s, n) for t0, s, n in reward_calls if begin <= t0 <= end]
        r = sum(s for s, _ in inside)
        rows.append([f"step {i + 1}" + (" (warm-up, left out)" if i == 0 else ""), f"{end - begin:.2f}",
                     f"{r:.3f}", sum(n for _, n in inside), f"{100 * r / (end - begin):.2f}%"])
        if i > 0:
            shares.append(r / (end - begin)), step_s.append(end - begin), reward_s.append(r)
    rows.append([f"median of steps 2..{args.steps}", f"{pc.median(step_s):.2f}", f"{pc.median(reward_s):.3f}", "",
                 f"{100 * pc.median(shares):.2f}% (target <= 10%)"])
    pc.print_table(
        f"Reward share of a GRPO step: SmolLM2-135M-Instruct + LoRA, {len(prompts)} example prompts, "
        f"G={args.generations}, {args.batch} completions/step, <= {args.completion} new tokens, K={k}, "
        f"{threads} threads",
        ["step", "step s", "reward s (scoring + weighting)", "completions scored", "reward share"], rows,
        [f"scorers: {what}; weights: fixed 1/K per prompt (a dataset column, computed before training); "
         f"train seconds {result.seconds:.1f}"])
    return 0


if __name__ == "__main__":
    pc.run_main(main)
