"""Does the adapter know when it does not know? Leave one prompt kind out, in distribution, and the cost (issue 22).

On the main job's data (configs/example.yaml: its rows, scores and split by prompt; scores and embeddings come
from the caches the main job fills):

1. **Leave one kind out.** For each prompt kind in the data (taken from the data, not a fixed list), an adapter
   is trained on the other kinds (its own train / validation rows; the validation rows fit the fallback's ramp)
   and tested on the held-out test prompts of the left-out kind: pairwise accuracy of R = Σ w_k·s̃_k with the
   adapter's w(x), uniform weights, and w(x) with the fallback (default: the training-mean weights, and uniform),
   a constant blend (1 − λ₀)·w(x) + λ₀·uniform on every prompt (what a fallback that cannot tell the prompts apart
   amounts to), and the AUC with which each uncertainty signal separates the left-out kind's test prompts from the seen kinds'
   test prompts.
2. **In distribution.** The adapter trained on every kind, on its held-out test rows: its gain over the best fixed
   vector (2-fold cross-fitted over the test prompts, as `preforch evaluate adapter` does for the embedded data),
   with and without the fallback, and the share of the gain the fallback keeps.
3. **Cost.** `predict_weights` (w(x) only) against `predict` (w(x) with confidence) on the same prompts, the
   encoder included, alternating repeats in one run.

Each left-out row also reports the AUC of the adapter's own entropy, and of a logistic probe *told* which prompts
are the left-out kind (5-fold out-of-fold scores on the embeddings): the ceiling of what the encoder's space holds,
against which the untold signals are read.

Intervals are 95% bootstrap intervals by prompt. ``--limit-per-kind`` shrinks the data (the default is the main
job's 500). ``--data embedded:all`` adds CoCoNot as a fourth kind: leaving it out trains on exactly the main job's
three kinds and tests on a source it never saw; ``--in-distribution-kinds`` keeps part 2 on the main job's kinds.

    PYTHONPATH=src .venv/bin/python benchmarks/fallback_lokind.py --data embedded:all \
        --in-distribution-kinds hh-harmless,hh-helpful,ultrafeedback
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def load(limit_per_kind: int | None, data_setting: str | None):
    """The main job's config (its data replaced by ``data_setting`` when given), its scored rows, and their prompt
    embeddings [N, D]."""
    from preforch.adapter.train import _load_encoder, embed_texts
    from preforch.adapter.views import view_inputs
    from preforch.config import build_config
    from preforch.recipes.adapter_train import TrainAdapterJob, load_job_data, score_job_data

    job = build_config(TrainAdapterJob, ROOT / "configs" / "example.yaml")
    job = dataclasses.replace(job, progress=False, limit_per_kind=limit_per_kind or job.limit_per_kind,
                              data=data_setting or job.data)
    data, _ = score_job_data(job, load_job_data(job))
    config = job.adapter_config()
    encoder = _load_encoder(config)
    emb = embed_texts(encoder, view_inputs(data.prompts, config.prompt_view, encoder), config.embed_batch_size)
    return config, data, emb, encoder


def accuracies(adapter, emb, chosen, rejected):
    """Pair outcomes [N] of the adapter's w(x), uniform, fallback to the training mean, fallback to uniform,
    and the adapter's uncertainty components {name: [N]}."""
    from preforch.evaluate.metrics import pair_outcomes
    from preforch.weighting import Weighting, resolve_weights

    norm = adapter.normalizer
    c, r = norm.transform(chosen), norm.transform(rejected)
    k = len(adapter.objectives)
    pred = adapter.predict_from_embeddings_with_confidence(emb)
    out = {"adapter w(x)": pair_outcomes(pred.weights, c, r), "uniform": pair_outcomes(np.full(k, 1 / k), c, r)}
    for share in (0.25, 0.5, 0.75):  # the same blend towards uniform on every prompt, whatever its uncertainty
        out[f"constant blend {share}"] = pair_outcomes((1 - share) * pred.weights + share / k, c, r)
    for name, fb in (("fallback to training mean", "on"), ("fallback to uniform", "uniform")):
        used = resolve_weights([None] * len(emb), adapter.objectives, Weighting(fallback=fb), inferred=pred)
        out[name] = pair_outcomes(used.weights, c, r)
        out[f"mean lambda ({fb})"] = used.fallback
    parts = {name: v.numpy() for name, v in adapter.uncertainty.components(adapter.mlp, emb.float()).items()}
    w = np.clip(pred.weights, 1e-12, 1.0)
    parts["entropy"] = -(w * np.log(w)).sum(1)  # the adapter's own spread: high where it is unsure
    return out, parts


def leave_one_kind_out(config, data, emb, bootstrap: int) -> list[dict]:
    from preforch.adapter.train import train_adapter
    from preforch.data.split import split_by_prompt
    from preforch.stats import auc_estimate, estimate

    kinds = np.asarray(data.kinds, dtype=object)
    full = split_by_prompt(data.prompts, config.val_fraction, config.test_fraction, config.seed)
    test = np.zeros(len(data), dtype=bool)
    test[full.test] = True
    rows = []
    for left in sorted(set(data.kinds)):
        seen = np.flatnonzero(kinds != left)
        started = time.perf_counter()
        result = train_adapter(config, data.subset(seen), embeddings=emb[seen], progress=False)
        seconds = time.perf_counter() - started
        adapter = result.adapter
        out_rows = np.flatnonzero((kinds == left) & test)
        seen_test = seen[result.split.test]  # the seen kinds' test prompts, never trained or early-stopped on
        sub = data.subset(out_rows)
        outcomes, parts = accuracies(adapter, emb[out_rows], sub.scores_chosen, sub.scores_rejected)
        groups = [p.key() for p in sub.prompts]
        _, seen_parts = accuracies(adapter, emb[seen_test], data.subset(seen_test).scores_chosen,
                                   data.subset(seen_test).scores_rejected)
        labels = np.r_[np.ones(len(out_rows)), np.zeros(len(seen_test))]
        all_groups = groups + [data.prompts[i].key() for i in seen_test]
        row = {"left out": left, "test pairs": len(out_rows), "seen-kind test pairs": len(seen_test),
               "train s": round(seconds, 1)}
        for name, values in outcomes.items():
            row[name] = (float(values.mean()) if name.startswith("mean lambda")
                         else estimate(values, groups, bootstrap))
        u = {**parts, "max": np.maximum(parts["distance"], parts["disagreement"])}
        seen_u = {**seen_parts, "max": np.maximum(seen_parts["distance"], seen_parts["disagreement"])}
        for name in ("distance", "disagreement", "max", "entropy"):
            row[f"AUC {name}"] = auc_estimate(np.r_[u[name], seen_u[name]], labels, all_groups, bootstrap)
        both = np.r_[out_rows, seen_test]
        row["AUC supervised probe (ceiling)"] = auc_estimate(probe_scores(emb[both].numpy(), labels), labels,
                                                              all_groups, bootstrap)
        row["ramp"] = tuple(round(v, 3) for v in adapter.uncertainty.ramp)
        row["median u left-out / seen"] = (round(float(np.median(u[config.uncertainty_signal])), 3),
                                           round(float(np.median(seen_u[config.uncertainty_signal])), 3))
        rows.append(row)
        print(row, flush=True)
    return rows


def probe_scores(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Out-of-fold scores of a logistic probe told which prompts are the left-out kind (5 folds): how far the
    embedding itself separates the kinds when the labels are known, the ceiling for a signal that is not told."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    probe = LogisticRegression(C=1.0, max_iter=2000)
    return cross_val_predict(probe, x, labels, cv=5, method="predict_proba")[:, 1]


def in_distribution(config, data, emb, bootstrap: int):
    """(adapter, evaluation without fallback, with fallback, share of the gain kept, resolved fallback weights,
    test rows)."""
    from preforch.adapter.targets import target_weights
    from preforch.adapter.train import train_adapter
    from preforch.evaluate.adapter_eval import evaluate_adapter_arrays
    from preforch.weighting import Weighting, resolve_weights

    result = train_adapter(config, data, embeddings=emb, progress=False)
    adapter, te = result.adapter, result.split.test
    part = data.subset(te)
    norm = adapter.normalizer
    c, r = norm.transform(part.scores_chosen), norm.transform(part.scores_rejected)
    pred = adapter.predict_from_embeddings_with_confidence(emb[te])
    fb = resolve_weights([None] * len(te), adapter.objectives, Weighting(fallback="on"), inferred=pred)
    evals = []
    for weights in (pred.weights, fb.weights):
        evals.append(evaluate_adapter_arrays(adapter.objectives, weights, target_weights(c, config.tau),
                                             test_chosen=c, test_rejected=r, test_kinds=part.kinds,
                                             test_groups=[p.key() for p in part.prompts], bootstrap=bootstrap))
    gains = [e.pairwise["all"].adapter_minus_best_fixed.mean for e in evals]
    return adapter, evals, gains[1] / gains[0] if gains[0] > 0 else float("nan"), fb, te, result.split.val


def cost(adapter, prompts: list, repeats: int) -> dict:
    """Seconds per call of predict_weights and predict (with confidence) on the same prompts, alternating."""
    adapter.predict_weights(prompts[:8])  # load the encoder and warm up
    plain, full = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        adapter.predict_weights(prompts)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        adapter.predict(prompts)
        full.append(time.perf_counter() - t)
    ratios = [f / p for f, p in zip(full, plain)]
    return {"prompts": len(prompts), "repeats": repeats, "w(x) s (median)": statistics.median(plain),
            "w(x)+confidence s (median)": statistics.median(full), "ratio (median)": statistics.median(ratios),
            "ratio min..max": (min(ratios), max(ratios))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-per-kind", type=int, default=None)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-loko", action="store_true")
    parser.add_argument("--data", default=None, help="data setting instead of the main job's (embedded:all adds "
                                                     "CoCoNot as a fourth kind to leave out)")
    parser.add_argument("--in-distribution-kinds", default=None,
                        help="comma-separated kinds for the in-distribution part (default: every kind loaded)")
    args = parser.parse_args()
    import torch

    from preforch.stats import estimate

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    config, data, emb, encoder = load(args.limit_per_kind, args.data)
    print(f"data: {len(data)} rows, kinds {sorted(set(data.kinds))}; signal {config.uncertainty_signal}, "
          f"fallback_quantile {config.fallback_quantile}", flush=True)
    keep = np.arange(len(data))
    if args.in_distribution_kinds:
        keep = np.flatnonzero(np.isin(np.asarray(data.kinds, dtype=object), args.in_distribution_kinds.split(",")))
    adapter, evals, kept, fb, te, val = in_distribution(config, data.subset(keep), emb[keep], args.bootstrap)
    for name, e in zip(("no fallback", "fallback (training mean)"), evals):
        p = e.pairwise["all"]
        print(f"in distribution, {name}: accuracy {p.adapter:.3f}, best fixed {p.best_fixed:.3f}, gain "
              f"{p.adapter_minus_best_fixed:+.3f} (n {p.n_pairs} pairs, {p.n_prompts} prompts)")
    print(f"in distribution: share of the gain kept {kept:.3f}; mean lambda {float(fb.fallback.mean()):.3f}, "
          f"share of prompts with lambda > 0: {float((fb.fallback > 0).mean()):.3f}", flush=True)
    for label, rows in (("test", keep[te]), ("validation (what a setting could be chosen on)", keep[val])):
        outcomes, _ = accuracies(adapter, emb[rows], data.subset(rows).scores_chosen,
                                 data.subset(rows).scores_rejected)
        groups = [data.prompts[i].key() for i in rows]
        print(f"in distribution, {label} rows, pairwise accuracy: " + ", ".join(
            f"{name} {estimate(v, groups, args.bootstrap).mean:.3f}" for name, v in outcomes.items()
            if not name.startswith("mean lambda")), flush=True)
    adapter._encoder = encoder
    prompts = [data.prompts[i] for i in keep[:256]]
    print("cost:", cost(adapter, prompts, args.repeats), flush=True)
    if not args.skip_loko:
        leave_one_kind_out(config, data, emb, args.bootstrap)


if __name__ == "__main__":
    sys.exit(main())
