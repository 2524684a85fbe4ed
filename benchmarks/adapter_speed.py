"""Adapter cost on this machine: training time on N prompts with cached embeddings, and predict_weights
throughput with the embedded MiniLM encoder. Prints one table.

    .venv/bin/python benchmarks/adapter_speed.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    import numpy as np
    import torch

    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.adapter.train import embed_texts
    from preforch.adapter.views import view_inputs
    from preforch.data.example import load_example
    from preforch.models.encoders import load_encoder
    from preforch.rewards.rules import rule_scorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="prompts to train on")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--predict-n", type=int, default=512, help="prompts per predict_weights call")
    args = parser.parse_args()

    data = load_example().subset(list(range(args.n)))
    scorers = [rule_scorer("concise"), rule_scorer("sentiment", objective="positive")]
    data.objectives = [o for s in scorers for o in s.objectives]
    data.scores_chosen = np.concatenate([s.score(data.prompts, data.chosen) for s in scorers], axis=1)
    data.scores_rejected = np.concatenate([s.score(data.prompts, data.rejected) for s in scorers], axis=1)
    encoder = load_encoder("sentence", None)
    texts = view_inputs(data.prompts, "last_user", encoder)
    t0 = time.perf_counter()
    embed_texts(encoder, texts, cache=True)  # fills the cache (or reads it)
    first_embed = time.perf_counter() - t0

    config = AdapterConfig(seed=0)
    train_times, epochs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        emb = embed_texts(encoder, texts, cache=True)  # cached: a file read
        result = train_adapter(config, data, encoder=encoder, embeddings=emb, progress=False)
        train_times.append(time.perf_counter() - t0)
        epochs.append(result.report.epochs)

    prompts = load_example().prompts[-args.predict_n:]
    adapter = result.adapter
    adapter.predict_weights(prompts[:8])  # warm-up
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        adapter.predict_weights(prompts, batch_size=64)
        rates.append(len(prompts) / (time.perf_counter() - t0))
    mlp_rates = []
    emb = adapter.embed(prompts)
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        adapter.predict_from_embeddings(emb)
        mlp_rates.append(len(prompts) / (time.perf_counter() - t0))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| measure | median of {args.repeats} |")
    print("| --- | --- |")
    print(f"| embedding {args.n} prompts, first call (MiniLM, or cache read) | {first_embed:.1f} s |")
    print(f"| adapter training, {args.n} rows, cached embeddings ({statistics.median(epochs)} epochs) | "
          f"{statistics.median(train_times):.2f} s |")
    print(f"| predict_weights, {len(prompts)} prompts, MiniLM + MLP | {statistics.median(rates):.0f} prompts/s |")
    print(f"| MLP alone on precomputed embeddings | {statistics.median(mlp_rates):.0f} prompts/s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
