"""The embedded evaluation under the held-out protocol (issue 11): the main job's adapter on its own test
split, pairwise accuracy against uniform and the best fixed vector (chosen on validation rows), then best-of-N
with SmolLM2 candidates for held-out prompts of each kind. Prints Markdown tables.

    .venv/bin/python benchmarks/eval_embedded.py [--adapter runs/example] [--bon-prompts 48] [--max-new-tokens 48]

The adapter folder is the main job's (`preforch adapter train --config configs/example.yaml`; trained here when
missing). Its split.json names the test prompts: no test prompt was trained on, early-stopped on or used for any
choice, and those a built-in reward head was trained on are excluded. Best-of-N candidates are generated once
and cached under --work, keyed by the prompts, the policy files and the sampling settings.

Best-of-N asks whether the weights pick the candidate a prompt needs: for each kind its *target* objective
(HH harmless → harmless, HH helpful and UltraFeedback → helpful) is reported next to the others, with 95%
bootstrap intervals over prompts and the paired difference adapter − uniform and adapter − best fixed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
TARGET = {"hh-harmless": "harmless", "hh-helpful": "helpful", "ultrafeedback": "helpful"}
N_CANDIDATES = 8


def ensure_adapter(folder: Path) -> None:
    if (folder / "model.safetensors").is_file():
        return
    from preforch.config import build_config
    from preforch.recipes.adapter_train import TrainAdapterJob, run_train_job

    print(f"{folder}: no adapter; training it with configs/example.yaml", file=sys.stderr)
    job = build_config(TrainAdapterJob, ROOT / "configs" / "example.yaml", {"output": str(folder)})
    run_train_job(job)


def pairwise(folder: Path, work: Path, bootstrap: int) -> dict:
    from preforch.recipes.evaluate import EvaluateAdapterConfig, run_adapter_evaluation

    out = run_adapter_evaluation(EvaluateAdapterConfig(
        adapter=str(folder), data=str(folder / "scores.parquet"), bootstrap=bootstrap, plots=False,
        output_dir=str(work / "evaluate_adapter"), overwrite=True))
    return json.loads((out / "report.json").read_text())["result"]


def policy_identity() -> str:
    from preforch.models.policy import resolve_policy_path

    folder = Path(resolve_policy_path(None))
    files = sorted(folder.glob("*.safetensors"))
    return str(folder) + "".join(f"|{f.name}:{f.stat().st_size}" for f in files)


def candidates_for(prompts, args, work: Path) -> list[list[str]]:
    """SmolLM2 samples, N_CANDIDATES per prompt, cached by prompts + policy files + sampling settings."""
    settings = {"n": N_CANDIDATES, "max_new_tokens": args.max_new_tokens, "temperature": 0.7, "top_p": 0.9,
                "seed": args.seed}
    key = hashlib.sha256(json.dumps([[p.key() for p in prompts], policy_identity(), settings]).encode()).hexdigest()
    path = work / f"candidates_{key[:16]}.jsonl"
    if path.is_file():
        return [json.loads(line)["candidates"] for line in path.read_text().splitlines()]
    from preforch.atomic import write_text
    from preforch.models.generation import generate, load_policy

    t0 = time.perf_counter()
    policy = load_policy(None)
    out = generate(policy.model, policy.tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                   num_return_sequences=N_CANDIDATES, temperature=settings["temperature"], top_p=settings["top_p"],
                   seed=args.seed, progress=True)
    print(f"generated {N_CANDIDATES * len(prompts)} candidates in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    work.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(json.dumps({"prompt": p.to_messages(), "candidates": c}) + "\n"
                                    for p, c in zip(prompts, out)))
    return out


def test_prompts(folder: Path, per_kind: int, seed: int):
    """Held-out prompts of each kind: in the adapter's test split and never seen by a reward head."""
    from preforch.adapter.splits import read_split_prompts
    from preforch.data.load import load_preference_data
    from preforch.data.split import prompt_fingerprint
    from preforch.recipes.evaluate import reward_model_prompts

    data = load_preference_data(str(folder / "scores.parquet"), require_scores=True)
    test, seen = read_split_prompts(folder, ("test",)), reward_model_prompts(["builtin"]) or set()
    rng = np.random.default_rng(seed)
    prompts, kinds = [], []
    for kind in sorted(set(data.kinds)):
        rows = [i for i, (p, k) in enumerate(zip(data.prompts, data.kinds))
                if k == kind and prompt_fingerprint(p) in test and prompt_fingerprint(p) not in seen]
        unique = list({data.prompts[i].key(): data.prompts[i] for i in rows}.values())
        for i in rng.permutation(len(unique))[:per_kind]:
            prompts.append(unique[i])
            kinds.append(kind)
    return prompts, kinds


def best_of_n(folder: Path, report: dict, args, work: Path) -> None:
    from preforch.adapter import PreferenceAdapter
    from preforch.evaluate.metrics import select_best
    from preforch.rewards.builtin import load_builtin_scorer
    from preforch.rewards.cache import ScoreCache
    from preforch.rewards.multi import MultiScorer
    from preforch.stats import estimate, paired_difference

    adapter = PreferenceAdapter.from_pretrained(str(folder))
    prompts, kinds = test_prompts(folder, args.bon_prompts // 3, args.seed)
    candidates = candidates_for(prompts, args, work)
    scorer = MultiScorer([load_builtin_scorer()], batch_size=64, cache=ScoreCache(), progress=True)
    flat_p = [p for p, c in zip(prompts, candidates) for _ in c]
    raw = scorer.score(flat_p, [y for c in candidates for y in c])  # [P * G, K]
    objectives = adapter.objectives
    k = len(objectives)
    s = adapter.normalizer.transform(raw).reshape(len(prompts), N_CANDIDATES, k)  # [P, G, K]
    w = adapter.predict_weights(prompts)  # [P, K]
    best_fixed = np.asarray(report["best_fixed_weights"])
    kinds_arr = np.asarray(kinds)
    print(f"\n## Best-of-N with SmolLM2 candidates: {len(prompts)} held-out prompts "
          f"({', '.join(f'{k} {int((kinds_arr == k).sum())}' for k in sorted(set(kinds)))}), "
          f"mean normalised score of the pick, 95% intervals over prompts\n")
    print(f"Best fixed vector (the lattice vector best on all of the adapter's test pairs in `evaluate adapter`, "
          f"which include these prompts' pairs: optimistic for the fixed baseline): "
          f"{dict(zip(objectives, best_fixed.round(2).tolist()))}\n")
    print("| N | kind | weighting | " + " | ".join(objectives) + " | target objective: adapter − this |")
    print("|---|---|---|" + "---|" * (k + 1))
    for n in (4, 8):
        sub = s[:, :n]
        picks = {"adapter": select_best(sub, w), "uniform": select_best(sub, np.full(k, 1 / k)),
                 "best fixed": select_best(sub, best_fixed)}
        chosen = {name: sub[np.arange(len(prompts)), pick] for name, pick in picks.items()}  # [P, K]
        for kind in sorted(set(kinds)):
            idx = np.flatnonzero(kinds_arr == kind)
            t = objectives.index(TARGET.get(kind, objectives[0]))
            for name, c in chosen.items():
                cells = " | ".join(f"{estimate(c[idx, j], n=args.bootstrap):.2f}" for j in range(k))
                diff = "—" if name == "adapter" else \
                    f"{paired_difference(chosen['adapter'][idx, t], c[idx, t], n=args.bootstrap):+.2f}"
                print(f"| {n} | {kind} | {name} | {cells} | {diff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default="runs/example", help="the main job's adapter folder")
    parser.add_argument("--bon-prompts", type=int, default=48, help="held-out prompts for best-of-N (split by kind)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--work", default="runs/bench_eval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-best-of-n", action="store_true", help="pairwise accuracy only")
    args = parser.parse_args()
    folder, work = Path(args.adapter), Path(args.work)
    ensure_adapter(folder)
    report = pairwise(folder, work, args.bootstrap)
    if not args.skip_best_of_n:
        best_of_n(folder, report, args, work)


if __name__ == "__main__":
    main()
