"""Could any embedding space see a prompt kind the adapter never saw? (issue 22)

For each kind of ``--data`` (default ``embedded:all``: the main job's three kinds plus CoCoNot) it is left out: the
reference set is the other kinds' training prompts (the main job's split by prompt), and a signal must separate
the left-out kind's held-out test prompts from the seen kinds' held-out test prompts (ROC AUC; the issue's goal is
0.75). Signals, each in several spaces (MiniLM as the shipped adapter uses it, and SmolLM2's last-prompt-token
state at layers 8, 15, 22 and the last, the state a ``causal_lm`` adapter reads):

- ``knn``: mean cosine distance to the 10 nearest reference prompts, raw and after standardising each dimension
  with the reference statistics (the shipped signal is MiniLM raw, against centroids);
- ``pca-residual``: the share of the centred embedding outside the reference's top 64 principal components;
- ``probe``: a logistic regression *told* which prompts are the left-out kind (5-fold out-of-fold scores) — not a
  usable signal, the ceiling of what the space holds.

The embeddings are cached in ``--cache`` (an .npz; SmolLM2 over 2,000 prompts takes ~20 min on a loaded 2-core
CPU, MiniLM ~2 min).

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/uncertainty_spaces.py --cache runs/spaces.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
LAYERS = (8, 15, 22, -1)


def embed(data_setting: str) -> dict[str, np.ndarray]:
    """Kinds, split sides and every space's embeddings of the data's prompts."""
    import torch

    from preforch.adapter.train import _load_encoder, embed_texts
    from preforch.adapter.views import view_inputs
    from preforch.config import build_config
    from preforch.data.split import split_by_prompt
    from preforch.models.batching import length_sorted_batches
    from preforch.models.encoders import load_encoder
    from preforch.recipes.adapter_train import TrainAdapterJob, load_job_data

    job = build_config(TrainAdapterJob, ROOT / "configs" / "example.yaml")
    job = dataclasses.replace(job, progress=False, data=data_setting)
    data = load_job_data(job)
    config = job.adapter_config()
    split = split_by_prompt(data.prompts, config.val_fraction, config.test_fraction, config.seed)
    side = np.array(["train"] * len(data), dtype=object)
    side[split.val], side[split.test] = "val", "test"
    out = {"kinds": np.asarray(data.kinds, dtype=str), "side": side.astype(str)}
    encoder = _load_encoder(config)
    out["minilm"] = embed_texts(encoder, view_inputs(data.prompts, config.prompt_view, encoder),
                                config.embed_batch_size).numpy()
    llm = load_encoder("causal_lm", None, max_length=256)
    texts = view_inputs(data.prompts, config.prompt_view, llm)
    states = {layer: np.empty((len(texts), llm.dim), dtype=np.float32) for layer in LAYERS}
    tok = llm.tokenizer
    tok.padding_side = "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    with torch.inference_mode():  # one pass gives every layer (CausalLMEncoder.encode keeps one)
        for idx in length_sorted_batches([len(t) for t in texts], 16):
            batch = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256,
                        add_special_tokens=not llm.chat_template, return_tensors="pt")
            hidden = llm.model(**batch, output_hidden_states=True).hidden_states
            for layer in LAYERS:
                states[layer][idx] = llm.last_token_state(hidden[layer], batch["attention_mask"]).float().numpy()
    out.update({f"smollm2 layer {layer}": v for layer, v in states.items()})
    return out


def signals(ref: np.ndarray, query: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each signal's scores of the query rows. Shapes: ref [M, D], query [N, D], labels [N] → name → [N]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    def knn(r, q, k=10):
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        return np.sort(1 - q @ r.T, axis=1)[:, :k].mean(1)

    mu, sd = ref.mean(0), ref.std(0) + 1e-6
    top = np.linalg.svd(ref - mu, full_matrices=False)[2][:64]  # [64, D]
    centred = query - mu
    resid = centred - (centred @ top.T) @ top
    probe = LogisticRegression(max_iter=3000)
    return {"knn raw": knn(ref, query), "knn standardised": knn((ref - mu) / sd, (query - mu) / sd),
            "pca-residual": np.linalg.norm(resid, axis=1) / np.linalg.norm(centred, axis=1),
            "probe (told; ceiling)": cross_val_predict(probe, (query - mu) / sd, labels, cv=5,
                                                       method="predict_proba")[:, 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="embedded:all")
    parser.add_argument("--cache", default=None, help=".npz of the embeddings: read when it exists, else written")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    from preforch.stats import auc_estimate

    if args.cache and os.path.exists(args.cache):
        arrays = dict(np.load(args.cache, allow_pickle=False))
    else:
        arrays = embed(args.data)
        if args.cache:
            np.savez(args.cache, **arrays)
    kinds, side = arrays["kinds"], arrays["side"]
    left_out = sorted(set(kinds.tolist()))
    print("| space | signal | " + " | ".join(f"{k} left out" for k in left_out) + " |")
    print("|---|---|" + "---|" * len(left_out))
    spaces = [name for name in arrays if name not in ("kinds", "side")]
    table: dict[tuple[str, str], list[str]] = {}
    for left in left_out:
        ref = arrays[spaces[0]][(kinds != left) & (side == "train")]
        out, seen = (kinds == left) & (side == "test"), (kinds != left) & (side == "test")
        labels = np.r_[np.ones(out.sum()), np.zeros(seen.sum())]
        for space in spaces:
            emb = arrays[space].astype(np.float64)
            ref = emb[(kinds != left) & (side == "train")]
            for name, score in signals(ref, np.r_[emb[out], emb[seen]], labels).items():
                est = auc_estimate(score, labels, None, args.bootstrap)
                table.setdefault((space, name), []).append(f"{est.mean:.3f} [{est.lo:.3f}, {est.hi:.3f}]")
    for (space, name), cells in table.items():
        print(f"| {space} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
