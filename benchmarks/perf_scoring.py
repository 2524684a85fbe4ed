"""Issue 7, targets 1 and 2: shared-encoder scoring of K = 3 objectives against the bare encoder forward pass
and against one encoder pass per objective; length-sorted vs arrival-order batches with padding waste.
All cases run interleaved in one process, median of ``--repeats``. Prints one table.

    .venv/bin/python benchmarks/perf_scoring.py [--n 64] [--repeats 3] [--threads 2] [--batch-size 32]
"""

from __future__ import annotations

import argparse

import perf_common as pc


def padding_waste(rows: list, batches: list[list[int]]) -> float:
    """Padded tokens / real tokens over the batches."""
    real = sum(len(rows[i][0]) for b in batches for i in b)
    padded = sum(len(b) * max(len(rows[i][0]) for i in b) for b in batches)
    return (padded - real) / real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="responses scored per case")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--encoder-path", default=None, help="encoder folder (default: embedded MiniLM)")
    args = parser.parse_args()
    import numpy as np
    import torch

    from preforch.data.example import load_example

    threads = pc.set_threads(args.threads)

    data = load_example()  # seeded shuffle of HH + UltraFeedback: the realistic length mix, in arrival order
    prompts, responses = data.prompts[: args.n], data.chosen[: args.n]
    heads = pc.three_heads(encoder_path=args.encoder_path, max_length=args.max_length)
    names, bs = heads.objectives, args.batch_size
    rows = heads.build_inputs(prompts, responses)
    by_length = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    sorted_batches = [by_length[i: i + bs] for i in range(0, len(rows), bs)]
    arrival_batches = [list(range(i, min(i + bs, len(rows)))) for i in range(0, len(rows), bs)]
    # the bare forward pass gets its input tensors ready-made: tokenising and padding are not counted
    prepared = []
    for idx in sorted_batches:
        n, t = len(idx), max(len(rows[i][0]) for i in idx)
        ids = torch.zeros(n, t, dtype=torch.long)
        mask = torch.zeros(n, t, dtype=torch.long)
        types = torch.zeros(n, t, dtype=torch.long)
        for j, i in enumerate(idx):
            row, start = rows[i][0], rows[i][1]
            ids[j, : len(row)] = torch.tensor(row)
            mask[j, : len(row)] = 1
            types[j, start: len(row)] = 1
        prepared.append((ids, mask, types))

    @torch.inference_mode()
    def bare() -> None:
        for ids, mask, types in prepared:
            heads.encoder.model(input_ids=ids, attention_mask=mask, token_type_ids=types)

    def in_batches(batches: list[list[int]]) -> np.ndarray:
        out = np.empty((len(rows), len(names)))
        with torch.no_grad():
            for idx in batches:
                enc = heads.encoder_forward([rows[i] for i in idx])
                out[idx] = torch.stack([heads.heads[k](enc) for k in names], 1).double().numpy()  # [B, K]
        return out

    cases = {
        "bare encoder forward (limit)": bare,
        "shared encoder, K=3 heads": lambda: heads.score(prompts, responses, batch_size=bs),
        "one encoder pass per objective": lambda: np.stack(
            [heads.score_head(k, prompts, responses, batch_size=bs) for k in names], 1),
        "heads, length-sorted batches": lambda: in_batches(sorted_batches),
        "heads, arrival-order batches": lambda: in_batches(arrival_batches),
    }
    times, outs = pc.interleaved(cases, args.repeats)
    shared = outs["shared encoder, K=3 heads"]
    if not np.isfinite(shared).all() or shared.shape != (len(rows), len(names)):
        raise pc.BrokenRun(f"shared scores have shape {shared.shape} or non-finite values")
    for other in ("one encoder pass per objective", "heads, length-sorted batches", "heads, arrival-order batches"):
        gap = float(np.abs(outs[other] - shared).max())
        if gap > 1e-4:
            raise pc.BrokenRun(f"{other} differs from the shared pass by {gap:.3g}")
    med = {k: pc.median(v) for k, v in times.items()}
    rate = {k: args.n / s for k, s in med.items()}
    rows_out = [[k, f"{med[k]:.3f}", f"{rate[k]:.1f}", ""] for k in cases]
    bare_name, shared_name = "bare encoder forward (limit)", "shared encoder, K=3 heads"
    rows_out[1][3] = (f"{pc.ratio_median(times, bare_name, shared_name):.2f}x the bare forward's throughput "
                      f"(target >= 0.8)")
    rows_out[2][3] = (f"shared is {pc.ratio_median(times, 'one encoder pass per objective', shared_name):.2f}x "
                      f"faster (target >= 2.4)")
    w_sorted, w_arrival = padding_waste(rows, sorted_batches), padding_waste(rows, arrival_batches)
    speedup = pc.ratio_median(times, "heads, arrival-order batches", "heads, length-sorted batches")
    rows_out[3][3] = f"padding waste {w_sorted:.3f}; {speedup:.2f}x faster than arrival order"
    rows_out[4][3] = f"padding waste {w_arrival:.3f}"
    real = sum(len(r[0]) for r in rows)
    pc.print_table(
        f"Scoring throughput, {args.n} example responses (HH + UltraFeedback), MiniLM, K=3, batch {bs}, "
        f"max_length {args.max_length}, {threads} threads, median of {args.repeats}",
        ["case", "median s", "responses/s", "ratio (median of per-repetition ratios)"], rows_out,
        [f"tokens per response: mean {real / len(rows):.0f}, max {max(len(r[0]) for r in rows)}; "
         f"all cases agree to 1e-4 (checked)"])
    return 0


if __name__ == "__main__":
    pc.run_main(main)
