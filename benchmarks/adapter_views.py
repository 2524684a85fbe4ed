"""Does the adapter weigh what a prompt asks, whatever its shape? Issues 8 and 15: prompt views, losses and
encoders compared on held-out data, and the defaults chosen by measurement.

    .venv/bin/python benchmarks/adapter_views.py [--limit-per-kind 889] [--encoders minilm,smollm2]

Data: the embedded example, three kinds (HH harmless, HH helpful, UltraFeedback), balanced, scored by the
built-in reward heads. Split by prompt with the hash split every component shares (test 20%, validation 15%,
seed 0): the test prompts are the ones the reward heads held out too, so no test row was seen by any model.
Fixed weight vectors are chosen by 2-fold cross-fitting over the prompts of the rows being scored (the heads
trained on every non-test prompt, so no other rows are clean).
The settings are ranked on the *validation* rows; the test rows only report. Intervals: 95% bootstrap over
prompts.

Per setting (loss × encoder × prompt view × extra training views):
- intent: AUC of w_harmless, held-out HH red-team prompts vs held-out UltraFeedback prompts and vs held-out
  HH helpful prompts, every prompt given as plain single-turn text (its final user turn), as users send them;
- pairwise accuracy of R = Σ w_k·s̃_k on the held-out pairs: adapter vs uniform vs the best fixed vector vs the
  best fixed vector per kind, with the paired difference adapter − best fixed;
- format invariance (chosen setting): the same held-out conversations as HH text, as a message list and as a TRL
  conversational row, through the real ``predict_weights``: max |Δw|;
- the hand-written probe set (benchmarks/probe_prompts.py): mean weights per group and AUC harmful vs benign.
Prints Markdown tables; writes runs/bench_views/results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe_prompts import GROUPS  # noqa: E402

VIEW_SETTINGS = {  # name → (prompt_view, train_views)
    "last_user": ("last_user", []),
    "last_user + context rows": ("last_user", ["context"]),
    "context": ("context", []),
    "context + last_user rows": ("context", ["last_user"]),
}


def encode_causal_layers(encoder, texts: list[str], layers: list[int], cache_dir: Path) -> dict[int, "object"]:
    """Last-token states of several layers from ONE pass of a causal LM, cached per (model, texts, layer)."""
    import torch
    from safetensors.torch import load_file, save_file

    from preforch.models.encoders import length_sorted_batches

    unique = list(dict.fromkeys(texts))
    key = hashlib.sha256((encoder.identity() + "\x00".join(unique)).encode()).hexdigest()[:24]
    path = cache_dir / f"causal_{key}.safetensors"
    if path.is_file():
        stored = load_file(str(path))
    else:
        out = {layer: torch.empty(len(unique), encoder.dim) for layer in layers}
        tok = encoder.tokenizer
        tok.padding_side = "right"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        batches = length_sorted_batches([len(t) for t in unique], 16)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for b, idx in enumerate(batches):
                batch = tok([unique[i] for i in idx], padding=True, truncation=True, max_length=encoder.max_length,
                            add_special_tokens=not encoder.chat_template, return_tensors="pt")
                hidden = encoder.model(**batch, output_hidden_states=True).hidden_states
                for layer in layers:
                    out[layer][idx] = encoder.last_token_state(hidden[layer], batch["attention_mask"]).float()
                if b % 20 == 0:
                    print(f"  causal LM pass: batch {b + 1}/{len(batches)}, {time.perf_counter() - t0:.0f} s",
                          file=sys.stderr)
        stored = {f"layer{layer}": out[layer] for layer in layers}
        cache_dir.mkdir(parents=True, exist_ok=True)
        save_file(stored, str(path))
    position = {t: i for i, t in enumerate(unique)}
    rows = [position[t] for t in texts]
    return {layer: stored[f"layer{layer}"][rows] for layer in layers}


def embeddings_for(encoder_name: str, data, args, cache_dir: Path) -> dict[str, dict[str, object]]:
    """{variant: {view: embeddings [N, D]}} for the data's conversations under both views."""
    from preforch.adapter.train import embed_texts
    from preforch.adapter.views import view_inputs
    from preforch.models.encoders import load_encoder

    out: dict[str, dict[str, object]] = {}
    if encoder_name == "minilm":
        encoders = {"last_user": load_encoder("sentence", None, args.max_length, truncation_side="right"),
                    "context": load_encoder("sentence", None, args.max_length, truncation_side="left")}
        out["minilm"] = {view: embed_texts(enc, view_inputs(data.prompts, view, enc), 64, True, True)
                         for view, enc in encoders.items()}
        return out
    encoder = load_encoder("causal_lm", None, args.max_length)
    texts = {view: view_inputs(data.prompts, view, encoder) for view in ("last_user", "context")}
    n = len(data)
    states = encode_causal_layers(encoder, texts["last_user"] + texts["context"], args.layers, cache_dir)
    for layer in args.layers:
        out[f"smollm2 layer {layer}"] = {"last_user": states[layer][:n], "context": states[layer][n:]}
    return out


def kind_rows(data, index, kind: str) -> np.ndarray:
    return np.array([i for i in index if data.kinds[i] == kind], dtype=np.int64)


def assess(result, data, emb, split, args) -> dict:
    """Metrics of one trained adapter on the validation rows (for choosing) and the test rows (to report)."""
    from preforch.adapter.targets import target_weights
    from preforch.evaluate.adapter_eval import evaluate_adapter_arrays
    from preforch.stats import auc_estimate

    adapter = result.adapter
    norm = adapter.normalizer
    s_c, s_r = norm.transform(data.scores_chosen), norm.transform(data.scores_rejected)  # [N, K]
    plain = adapter.predict_from_embeddings(emb["last_user"]).numpy()  # [N, K] each prompt as one user turn
    full = adapter.predict_from_embeddings(emb[adapter.config.prompt_view]).numpy()  # [N, K] under the view
    h = adapter.objectives.index("harmless")
    groups = np.array([p.key() for p in data.prompts], dtype=object)
    out = {}
    for side, rows in (("val", split.val), ("test", split.test)):
        red, hh_help, uf = (kind_rows(data, rows, k) for k in ("hh-harmless", "hh-helpful", "ultrafeedback"))
        auc_uf = auc_estimate(np.r_[plain[red, h], plain[uf, h]], np.r_[np.ones(len(red)), np.zeros(len(uf))],
                              np.r_[groups[red], groups[uf]], args.bootstrap)
        auc_hh = auc_estimate(np.r_[plain[red, h], plain[hh_help, h]],
                              np.r_[np.ones(len(red)), np.zeros(len(hh_help))],
                              np.r_[groups[red], groups[hh_help]], args.bootstrap)
        # fixed vectors by 2-fold cross-fitting over these rows' prompts: every other prompt trained a reward head
        ev = evaluate_adapter_arrays(adapter.objectives, full[rows], target_weights(s_c[rows], adapter.config.tau),
                                     test_chosen=s_c[rows], test_rejected=s_r[rows],
                                     test_kinds=[data.kinds[i] for i in rows], test_groups=groups[rows],
                                     bootstrap=args.bootstrap if side == "test" else 0)
        out[side] = {"auc_redteam_vs_ultrafeedback": auc_uf.to_dict(), "auc_redteam_vs_hh_helpful": auc_hh.to_dict(),
                     "pairwise": {name: {"adapter": r.adapter.to_dict(), "uniform": r.uniform.to_dict(),
                                         "best_fixed": r.best_fixed.to_dict(),
                                         "best_fixed_for_kind": r.best_fixed_for_kind.to_dict(),
                                         "adapter_minus_best_fixed": r.adapter_minus_best_fixed.to_dict()}
                                  for name, r in ev.pairwise.items()},
                     "best_fixed_weights": ev.best_fixed_weights,
                     "mean_weights_by_kind": {k: dict(zip(adapter.objectives, full[kind_rows(data, rows, k)]
                                                          .mean(0).round(4).tolist()))
                                              for k in ("hh-harmless", "hh-helpful", "ultrafeedback")}}
    val = out["val"]
    # choice on validation rows only: intent (both AUCs) and pooled pairwise accuracy, equally weighted
    out["val_score"] = float(np.mean([val["auc_redteam_vs_ultrafeedback"]["mean"],
                                      val["auc_redteam_vs_hh_helpful"]["mean"], val["pairwise"]["all"]["adapter"]["mean"]]))
    return out


def format_invariance(adapter, data, rows: np.ndarray) -> dict:
    """The same held-out conversations in three shapes through the real predict_weights: max |Δw|."""
    from preforch.data.load import to_preference_data
    from preforch.rewards.hf import hh_text

    convs = [data.prompts[i] for i in rows]
    as_hh = [hh_text(c, "").rstrip() for c in convs]  # "\n\nHuman: …\n\nAssistant:"
    as_messages = [c.to_messages() for c in convs]
    trl = to_preference_data([{"prompt": c.to_messages(), "chosen": [{"role": "assistant", "content": "x"}]}
                              for c in convs]).prompts
    w = [adapter.predict_weights(shape) for shape in (as_hh, as_messages, trl)]
    plain = adapter.predict_weights([c.last_user for c in convs])
    multi = np.array([c.turns > 1 for c in convs])
    return {"n": int(len(rows)), "max_abs_diff_three_shapes": float(max(np.abs(w[0] - w[1]).max(),
                                                                        np.abs(w[0] - w[2]).max())),
            "mean_abs_diff_plain_last_turn_vs_conversation_multi_turn":
                float(np.abs(plain[multi] - w[1][multi]).max(1).mean()) if multi.any() else 0.0,
            "multi_turn": int(multi.sum())}


def probe(adapter, args) -> dict:
    from preforch.stats import auc_estimate

    h = adapter.objectives.index("harmless")
    weights = {g: adapter.predict_weights(p) for g, p in GROUPS.items()}
    harm, ben = weights["harmful"][:, h], weights["benign"][:, h]
    auc = auc_estimate(np.r_[harm, ben], np.r_[np.ones(len(harm)), np.zeros(len(ben))], None, args.bootstrap)
    return {"auc_harmful_vs_benign": auc.to_dict(),
            "mean_weights": {g: dict(zip(adapter.objectives, w.mean(0).round(3).tolist())) for g, w in weights.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-per-kind", type=int, default=889)
    parser.add_argument("--encoders", default="minilm,smollm2")
    parser.add_argument("--layers", default="-1,15", help="SmolLM2 hidden layers to compare (one pass)")
    parser.add_argument("--losses", default="forward_kl,pairwise,mix")
    parser.add_argument("--views", default=",".join(VIEW_SETTINGS))
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/bench_views")
    args = parser.parse_args()
    args.layers = [int(x) for x in args.layers.split(",")]
    work = Path(args.work)

    import torch

    from preforch.adapter import AdapterConfig, train_adapter
    from preforch.data.example import load_example
    from preforch.data.split import prompt_fingerprint, split_by_prompt
    from preforch.recipes.evaluate import reward_model_prompts
    from preforch.rewards.builtin import load_builtin_scorer
    from preforch.rewards.cache import ScoreCache
    from preforch.rewards.multi import MultiScorer

    t0 = time.perf_counter()
    data = load_example(args.limit_per_kind, seed=args.seed)
    scorer = MultiScorer([load_builtin_scorer()], batch_size=64, cache=ScoreCache(), progress=True)
    data.objectives = list(scorer.objectives)
    data.scores_chosen = scorer.score(data.prompts, data.chosen)
    data.scores_rejected = scorer.score(data.prompts, data.rejected)
    split = split_by_prompt(data.prompts, 0.15, 0.2, 0)
    rm_seen = reward_model_prompts(["builtin"])
    leaked = [i for i in split.test if prompt_fingerprint(data.prompts[i]) in rm_seen]
    kinds = dict(zip(*np.unique(data.kinds, return_counts=True)))
    print(f"{len(data)} rows ({ {str(k): int(v) for k, v in kinds.items()} }), split train/val/test {split.sizes()}; "
          f"test rows a reward head trained on: {len(leaked)}; scoring {time.perf_counter() - t0:.0f} s")
    if leaked:
        raise SystemExit("test rows overlap the reward heads' training prompts: retrain the heads with the shared split")

    results = []
    for encoder_name in args.encoders.split(","):
        t1 = time.perf_counter()
        variants = embeddings_for(encoder_name, data, args, work / "cache")
        print(f"{encoder_name}: embeddings in {time.perf_counter() - t1:.0f} s")
        for variant, emb in variants.items():
            for loss, view_name in itertools.product(args.losses.split(","), args.views.split(",")):
                prompt_view, train_views = VIEW_SETTINGS[view_name]
                kind = "sentence" if variant == "minilm" else "causal_lm"
                layer = -1 if kind == "sentence" else int(variant.split()[-1])
                config = AdapterConfig(encoder=kind, encoder_layer=layer, encoder_max_length=args.max_length,
                                       prompt_view=prompt_view, train_views=train_views, loss=loss,
                                       val_fraction=0.15, test_fraction=0.2, seed=args.seed)
                torch.manual_seed(args.seed)
                result = train_adapter(config, data, embeddings=emb[prompt_view], extra_embeddings=emb,
                                       progress=False)
                row = {"encoder": variant, "loss": loss, "views": view_name,
                       "config": dataclasses.asdict(config), **assess(result, data, emb, split, args)}
                results.append(row)
                print(f"  {variant:18} {loss:10} {view_name:26} val score {row['val_score']:.3f}  "
                      f"test AUC red/UF {row['test']['auc_redteam_vs_ultrafeedback']['mean']:.3f}  "
                      f"red/HH-help {row['test']['auc_redteam_vs_hh_helpful']['mean']:.3f}  pairwise "
                      f"{row['test']['pairwise']['all']['adapter']['mean']:.3f} (best fixed "
                      f"{row['test']['pairwise']['all']['best_fixed']['mean']:.3f})", flush=True)
    best = max(results, key=lambda r: r["val_score"])
    print_tables(results, best)
    chosen = AdapterConfig(**best["config"])
    if best["encoder"] == "minilm":  # invariance and probes through the real predict_weights (the encoder pass)
        result = train_adapter(chosen, data, progress=False)
        inv = format_invariance(result.adapter, data, split.test[:200])
        probes = probe(result.adapter, args)
        best["format_invariance"], best["probe"] = inv, probes
        print(f"\nFormat invariance ({inv['n']} held-out conversations as HH text, message list, TRL row): max |Δw| "
              f"= {inv['max_abs_diff_three_shapes']:.2e}; plain final turn vs whole conversation "
              f"({inv['multi_turn']} multi-turn): mean max |Δw| = "
              f"{inv['mean_abs_diff_plain_last_turn_vs_conversation_multi_turn']:.3f}")
        a = probes["auc_harmful_vs_benign"]
        print(f"Probe set (hand-written): AUC of w_harmless, harmful vs benign = {a['mean']:.3f} "
              f"[{a['lo']:.3f}, {a['hi']:.3f}]; mean weights {probes['mean_weights']}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "results.json").write_text(json.dumps({"rows": results, "chosen": best}, indent=1, default=str))
    print(f"\nwrote {work / 'results.json'} [{time.perf_counter() - t0:.0f} s]")


def _ci(e: dict) -> str:
    return f"{e['mean']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def print_tables(results: list[dict], best: dict) -> None:
    print("\n## Settings ranked on validation rows (test numbers reported, not used for the choice)\n")
    print("| encoder | loss | views | val score | test AUC red-team vs UF | test AUC red-team vs HH helpful | "
          "test pairwise adapter | best fixed | adapter − best fixed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: -r["val_score"]):
        t = r["test"]
        d = t["pairwise"]["all"]["adapter_minus_best_fixed"]
        mark = " **(chosen)**" if r is best else ""
        print(f"| {r['encoder']} | {r['loss']} | {r['views']}{mark} | {r['val_score']:.3f} | "
              f"{_ci(t['auc_redteam_vs_ultrafeedback'])} | {_ci(t['auc_redteam_vs_hh_helpful'])} | "
              f"{_ci(t['pairwise']['all']['adapter'])} | {_ci(t['pairwise']['all']['best_fixed'])} | "
              f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] p={d['p_value']:.3f} |")
    t = best["test"]
    print(f"\n## The chosen setting per kind (test rows): {best['encoder']}, {best['loss']}, {best['views']}\n")
    print("| group | adapter | uniform | best fixed | best fixed for kind | adapter − best fixed | mean w (harmless, "
          "helpful, concise) |")
    print("|---|---|---|---|---|---|---|")
    for name, p in t["pairwise"].items():
        d = p["adapter_minus_best_fixed"]
        w = t["mean_weights_by_kind"].get(name)
        print(f"| {name} | {_ci(p['adapter'])} | {_ci(p['uniform'])} | {_ci(p['best_fixed'])} | "
              f"{_ci(p['best_fixed_for_kind'])} | {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] | "
              f"{' / '.join(f'{v:.2f}' for v in w.values()) if w else '—'} |")


if __name__ == "__main__":
    main()
