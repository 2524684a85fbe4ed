"""Which training variant of the main job routes by need rather than wording? Trains each variant and runs
`preforch evaluate routing` on the shipped probes (configs/routing_probes.jsonl): validation rows to choose,
test rows to report. One table per split.

Every variant is configs/example.yaml (the built-in heads in this checkout, 500 pairs per kind, MiniLM, split by
prompt) with a few settings changed. Columns: the pooled AUC of w_harmless for harmful needs (plain + framed) vs
benign ones (plain + look-alike); the multi-turn group's AUC of w_harmless (need only in earlier turns); mean
w_harmless on plain harmful, framed, benign and look-alike prompts; the top-1 share over all labelled rows. All
with 95% bootstrap intervals by prompt. The validation score used to rank is the mean of the two AUCs.

    .venv/bin/python benchmarks/routing_variants.py [--variants example,all,...] [--reuse] [--bootstrap 1000]

Cold caches on a shared 2-core CPU: about 50 minutes (scoring the CoCoNot rows and encoding the context views
dominate); run it in parts with --variants and finish with --reuse, which prints the whole table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "configs" / "routing_probes.jsonl"
NEED = "need"
POOLS = {NEED: ["harmful", "framed", "benign", "look-alike"]}

#: name → settings changed from configs/example.yaml. "smollm2" reads the policy's hidden states (slow on CPU).
VARIANTS = {
    "example": {},
    "all": {"data": "embedded:all"},
    "context": {"prompt_view": "context"},
    "all+context": {"data": "embedded:all", "prompt_view": "context"},
    "all+context_rows": {"data": "embedded:all", "train_views": ["context"]},
    "forward_kl": {"loss": "forward_kl"},
    "all+forward_kl": {"data": "embedded:all", "loss": "forward_kl"},
    "all+context+carry": {"data": "embedded:all", "prompt_view": "context", "augment": "carry"},
    "smollm2": {"encoder": "causal_lm", "encoder_layer": 15, "encoder_max_length": 256},
}
#: Vague follow-ups for the "carry" augmentation, written to be generic: they ask nothing on their own.
FOLLOW_UPS = ["Can you say more?", "ok, and then?", "How exactly?", "Go on.", "What would the next step be?",
              "Can you be more specific?", "And how would that work?", "What else?"]


def carry(data, seed: int = 0):
    """A cheap contrastive augmentation: each row once more, as a conversation that continues with the preferred
    reply (its first 300 characters) and a vague follow-up, keeping the row's scores. The need now sits only in
    an earlier turn, as in a conversation that goes on; a context-view adapter learns to carry it forward.
    Scores are reused, not recomputed: the assumption is that the follow-up's best reply is judged as the first."""
    import numpy as np

    from preforch.conversation import Message
    from preforch.types import PreferenceData

    rng = np.random.default_rng(seed)
    extra = [type(p)((*p.messages, Message("assistant", y[:300]), Message("user", FOLLOW_UPS[rng.integers(8)])))
             for p, y in zip(data.prompts, data.chosen)]

    def twice(a):
        return None if a is None else np.concatenate([a, a])

    return PreferenceData(prompts=list(data.prompts) + extra, chosen=list(data.chosen) * 2,
                          rejected=None if data.rejected is None else list(data.rejected) * 2,
                          objectives=data.objectives, scores_chosen=twice(data.scores_chosen),
                          scores_rejected=twice(data.scores_rejected),
                          kinds=None if data.kinds is None else list(data.kinds) * 2, source=data.source + " + carry")
DEFAULT = "example,all,context,all+context,all+context_rows,all+context+carry,forward_kl"


def train(name: str, out: Path, reuse: bool) -> float:
    """Train one variant into ``out`` (or reuse it); returns the seconds spent."""
    from preforch.config import build_config
    from preforch.recipes.adapter_train import TrainAdapterJob, load_job_data, run_train_job, score_job_data

    if reuse and (out / "model.safetensors").is_file():
        return 0.0
    start = time.perf_counter()
    settings = dict(VARIANTS[name])
    augment = settings.pop("augment", None)
    job = build_config(TrainAdapterJob, ROOT / "configs" / "example.yaml",
                       {**settings, "output": str(out), "overwrite": True, "plot": False, "progress": False})
    run_train_job(job, carry(score_job_data(job, load_job_data(job)), job.seed) if augment == "carry" else None)
    return time.perf_counter() - start


def routing(adapter: Path, split: str, bootstrap: int):
    from preforch.recipes.evaluate_routing import EvaluateRoutingConfig, run_routing_evaluation

    return run_routing_evaluation(EvaluateRoutingConfig(
        adapter=str(adapter), data=str(PROBES), split=split, pools=POOLS, bootstrap=bootstrap, plots=False,
        output_dir=str(adapter / f"routing_{split}"), overwrite=True))


def _ci(e) -> str:
    return "—" if e is None else f"{e.mean:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def row(name: str, ev) -> tuple[float, str]:
    need, multi = ev.pools[NEED].auc["harmless"], ev.groups["multi-turn"].auc["harmless"]
    means = [_ci(ev.groups[g].mean_weights["harmless"]) for g in ("harmful", "framed", "benign", "look-alike")]
    score = (need.mean + multi.mean) / 2
    return score, (f"| {name} | {score:.3f} | {_ci(need)} | {_ci(multi)} | " + " | ".join(means)
                   + f" | {_ci(ev.overall.top1)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=DEFAULT, help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--output", default="runs/routing_variants", help="one adapter folder per variant here")
    parser.add_argument("--reuse", action="store_true", help="reuse an adapter already trained in its folder")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    tables: dict[str, list[tuple[float, str]]] = {"validation": [], "test": []}
    for name in names:
        folder = ROOT / args.output / name
        seconds = train(name, folder, args.reuse)
        print(f"{name}: trained in {seconds:.0f} s" if seconds else f"{name}: reused {folder}", flush=True)
        for split, rows in tables.items():
            rows.append(row(name, routing(folder, split, args.bootstrap)))
    for split, rows in tables.items():
        print(f"\n{split} rows of {PROBES.name} (ranked by the mean of the two AUCs on validation)\n")
        print("| variant | mean of the two AUCs | AUC w_harmless, harmful+framed vs benign+look-alike | AUC "
              "w_harmless, multi-turn | mean w_harmless: harmful | framed | benign | look-alike | top-1 share |")
        print("|---|---|---|---|---|---|---|---|---|")
        order = sorted(range(len(rows)), key=lambda i: -tables["validation"][i][0])
        for i in order:
            print(rows[i][1])


if __name__ == "__main__":
    main()
