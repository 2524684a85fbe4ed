"""`preforch rm train`: read the pairs (and their rating margins), train one reward head, write the heads folder
(config.json + model.safetensors), MODEL_CARD.md, metrics.json, training_prompts.json and provenance.json (the heads
as a scorer with their fingerprint, the data's fingerprint and row count, the preforch version)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from preforch.align.reward_lora import train_lora_heads
from preforch.artifacts import folder_fingerprint
from preforch.atomic import refuse_existing, staged_dir, write_json, write_text
from preforch.data.example import UF_FILE
from preforch.data.load import read_table
from preforch.data.sources import load_data_setting
from preforch.errors import PreforchError
from preforch.provenance import PROVENANCE_NAME, data_record, make_provenance
from preforch.recipes import next_step
from preforch.data.bad_rows import read_preference_file
from preforch.recipes.rm_card import render_lora_card
from preforch.rewards.head_config import LOCAL_ENCODER, TRAINING_PROMPTS_NAME, RMTrainConfig
from preforch.rewards.heads import SharedEncoderHeads
from preforch.rewards.train_head import RMTrainResult, StateCache, train_reward_head
from preforch.types import PreferenceData

__all__ = ["RMTrainConfig", "load_margins", "load_pairs", "render_model_card", "run_rm_train"]

log = logging.getLogger(__name__)


def load_pairs(data: str, limit: int | None = None, read: PreferenceData | None = None) -> PreferenceData:
    """An ``embedded:`` set (in file order) or any file `load_preference_data` reads (or the rows ``read`` from
    it already); needs rejected."""
    pairs = read if read is not None else load_data_setting(data, seed=None)
    if pairs.rejected is None:
        raise PreforchError(f"{pairs.source}: no 'rejected' column; reward-model training needs chosen/rejected pairs")
    if limit is not None:
        pairs = pairs.subset(np.arange(min(limit, len(pairs))))
    if len(pairs) < 3:
        raise PreforchError(f"{pairs.source}: {len(pairs)} pairs; at least 3 are needed")
    return pairs


def load_margins(data: str, n: int, kept: list[int] | None = None) -> np.ndarray:
    """Rating margin per pair, in :func:`load_pairs` order: a ``margin`` column, else UltraFeedback's
    ``metadata.score_chosen − score_rejected`` (ties dropped as the loader does); only the rows at ``kept`` when
    bad rows were set aside. Shape: [n]."""
    drop_ties = data == "embedded:ultrafeedback"  # as load_ultrafeedback does
    if drop_ties:
        data = str(UF_FILE)
    elif data.startswith("embedded:"):
        raise PreforchError(f"data {data!r}: has no rating margins (margin_weighting / min_margin need them)")
    out = []
    rows = read_table(data)
    for i, row in ([(i + 1, rows[i]) for i in kept] if kept is not None else enumerate(rows, 1)):
        meta = row.get("metadata") or {}
        if "margin" in row:
            out.append(float(row["margin"]))
        elif "score_chosen" in meta and "score_rejected" in meta:
            if not drop_ties or meta["score_chosen"] != meta["score_rejected"]:
                out.append(float(meta["score_chosen"]) - float(meta["score_rejected"]))
        else:
            raise PreforchError(f"{data}: row {i}: no 'margin' column nor metadata.score_chosen/score_rejected")
    if len(out) < n:
        raise PreforchError(f"{data}: {len(out)} margins for {n} pairs")
    return np.asarray(out[:n], dtype=np.float64)


def run_rm_train(config: RMTrainConfig, encoder=None, cache: StateCache | None = None) -> RMTrainResult:
    """Train, then write the heads folder + MODEL_CARD.md + metrics.json into ``config.output_dir``.

    ``encoder`` / ``cache`` (optional) reuse a loaded encoder and its cached token states of the same data.
    """
    out = Path(config.output_dir)
    refuse_existing(out, config.overwrite)  # fail before the training, not after
    if config.lora_rank:
        return _run_lora(config, out, encoder)
    parsed = None if config.data.startswith("embedded:") else read_preference_file(config.data, config, out)
    pairs = load_pairs(config.data, config.limit, parsed.data if parsed else None)
    margins = load_margins(config.data, len(pairs), parsed.kept if parsed else None) if config.needs_margins() else None
    result = train_reward_head(config, pairs, encoder=encoder, cache=cache, margins=margins)
    result.metrics["data"] = {"source": config.data if config.data.startswith("embedded:") else pairs.source,
                              "pairs": len(pairs)}
    with staged_dir(out, overwrite=config.overwrite) as tmp:
        if config.finetune_encoder:
            result.model.encoder.model.save_pretrained(tmp / LOCAL_ENCODER, safe_serialization=True)
            result.model.encoder.tokenizer.save_pretrained(tmp / LOCAL_ENCODER)
            result.model.config.encoder = LOCAL_ENCODER
            result.model.config.encoder_fingerprint = folder_fingerprint(tmp / LOCAL_ENCODER)
        result.model.write_files(tmp)
        write_json(tmp / "metrics.json", result.metrics)
        write_json(tmp / TRAINING_PROMPTS_NAME, {
            "what": "sha256[:16] of each prompt (preforch.data.split.prompt_fingerprint) this head was trained or "
                    "early-stopped on; preforch evaluate excludes these prompts from test rows",
            "data": result.metrics["data"]["source"], "fingerprints": result.trained_prompts})
        write_text(tmp / "MODEL_CARD.md", render_model_card(result.metrics))
        write_json(tmp / PROVENANCE_NAME, make_provenance(heads_record(tmp, out), config.data, len(pairs)))
    log.info("held-out accuracy %.3f (95%% CI %.3f–%.3f) on %d pairs; wrote %s", result.metrics["heldout_accuracy"],
             *result.metrics["heldout_accuracy_ci95"], result.metrics["n_pairs"]["heldout"], out)
    return result


def _run_lora(config: RMTrainConfig, out: Path, encoder=None) -> RMTrainResult:
    """Heads + encoder LoRA trained together (one head per ``config.head_data()`` entry), written as one folder."""
    data = {}
    for objective, source in config.head_data().items():
        parsed = None if source.startswith("embedded:") else read_preference_file(source, config, out)
        data[objective] = load_pairs(source, config.limit, parsed.data if parsed else None)
    resume = out.with_name(out.name + ".resume")  # one checkpoint per finished epoch; gone once the folder is written
    result = train_lora_heads(config, data, encoder=encoder, checkpoint_dir=resume)
    with staged_dir(out, overwrite=config.overwrite) as tmp:
        result.model.write_files(tmp)
        write_json(tmp / "metrics.json", result.metrics)
        write_json(tmp / TRAINING_PROMPTS_NAME, {
            "what": "sha256[:16] of each prompt (preforch.data.split.prompt_fingerprint) these heads were trained "
                    "or early-stopped on; preforch evaluate excludes these prompts from test rows",
            "data": config.head_data(), "fingerprints": result.trained_prompts})
        write_text(tmp / "MODEL_CARD.md", render_lora_card(result.metrics))
        write_json(tmp / PROVENANCE_NAME, make_provenance(heads_record(tmp, out), [
            {"objective": objective, **data_record(config.head_data()[objective], len(pairs))}
            for objective, pairs in data.items()]))
    for objective, m in result.metrics["objectives"].items():
        log.debug("%s: held-out accuracy %.3f (95%% CI %.3f–%.3f) on %d pairs", objective, m["heldout_accuracy"],
                 *m["heldout_accuracy_ci95"], m["n_pairs"]["heldout"])
    shutil.rmtree(resume, ignore_errors=True)
    log.debug("wrote %s", out)
    return result


def heads_record(staged: Path, out: Path) -> list[dict]:
    """The heads as a scorer record (:func:`preforch.provenance.scorer_records`): the ``{type: heads, path: out}``
    spec and the fingerprint that spec builds, read back from the staged folder so they agree."""
    heads = SharedEncoderHeads.from_pretrained(staged)
    return [{"spec": {"type": "heads", "path": str(out)}, "objectives": list(heads.objectives),
             "fingerprint": heads.identity()}]


def render_model_card(metrics: dict) -> str:
    """MODEL_CARD.md: data, split, seed, settings, held-out accuracy with its interval, and baselines."""
    cfg = metrics["config"]
    lo, hi = metrics["heldout_accuracy_ci95"]
    n, p = metrics["n_pairs"], metrics["n_prompts"]
    best_baseline = max(metrics["baselines"].items(), key=lambda kv: kv[1])
    settings = {k: cfg[k] for k in ("input_format", "max_length", "prompt_tokens", "pooling", "features", "hidden",
                                     "dropout", "finetune_encoder", "epochs", "patience", "batch_size", "lr",
                                     "weight_decay", "margin_weighting", "min_margin")}
    lines = [
        f"# Reward head: {cfg['objective']}",
        "",
        f"A Bradley–Terry reward head (−log σ(r(x, y⁺) − r(x, y⁻))) on the frozen encoder `{cfg['encoder']}`"
        f"{' (fine-tuned)' if cfg['finetune_encoder'] else ''}. Raw scores are unbounded logits: higher is "
        f"more {cfg['objective']}; compare them within an objective, and normalise before mixing objectives.",
        "",
        "## Data and split",
        "",
        f"- Data: `{metrics.get('data', {}).get('source', cfg['data'])}`, {sum(n.values())} pairs.",
        f"- Split by prompt (seed {cfg['seed']}): train {n['train']} pairs ({p['train']} prompts), validation "
        f"(early stopping) {n['val']} pairs ({p['val']} prompts), held out {n['heldout']} pairs "
        f"({p['heldout']} prompts). No held-out prompt was used for training or early stopping.",
        "",
        "## Held-out pairwise accuracy",
        "",
        f"**{metrics['heldout_accuracy']:.3f}** (95% bootstrap interval over held-out prompts, "
        f"{cfg['bootstrap']} resamples: {lo:.3f}–{hi:.3f}) on {n['heldout']} held-out pairs. "
        f"Train {metrics['train_accuracy']:.3f}, validation {metrics['val_accuracy']:.3f}."
        + (f" This is below the best length baseline ({best_baseline[1]:.3f}, {best_baseline[0].replace('_', ' ')})."
           if metrics["heldout_accuracy"] < best_baseline[1] else ""),
        "",
        "| baseline (same held-out pairs unless noted) | accuracy |",
        "| --- | --- |",
        f"| the shorter reply wins | {metrics['baselines']['shorter_reply_wins']:.3f} |",
        f"| the longer reply wins | {metrics['baselines']['longer_reply_wins']:.3f} |",
    ]
    lines += [f"| {name} (reference, measured elsewhere on this data) | {value} |"
              for name, value in sorted(cfg.get("references", {}).items())]
    if metrics.get("heldout_by_kind"):
        lines += ["", "Held-out accuracy by source (95% bootstrap interval over prompts):", "",
                  "| source | held-out pairs | accuracy | interval | the longer reply wins |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {kind} | {m['pairs']} | {m['accuracy']:.3f} | {m['accuracy_ci95'][0]:.3f}–{m['accuracy_ci95'][1]:.3f} "
                  f"| {m['longer_reply_wins']:.3f} |" for kind, m in metrics["heldout_by_kind"].items()]
    lines += _selection_lines(metrics)
    lines += [
        "",
        "## Training",
        "",
        f"Trained on {metrics.get('trained_pairs', n['train'])} of the {n['train']} train pairs"
        f"{' (min_margin ' + str(cfg.get('min_margin')) + ' drops smaller rating margins)' if cfg.get('min_margin') else ''}"
        f"; best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run; encoding {metrics['encode_seconds']} s, "
        f"{'selection and ' if metrics.get('selection') else ''}head training {metrics['train_seconds']} s.",
        "",
        "Settings: " + ", ".join(f"`{k}={v}`" for k, v in settings.items()) + ".",
        "",
        "Limits: small data, one language (English), and the labels' own biases (HH harmless raters reward "
        "refusals; UltraFeedback is GPT-4-rated). The HH text is red-team material.",
        "",
    ]
    return "\n".join(lines)


def _selection_lines(metrics: dict) -> list[str]:
    """The model-selection section of the card (empty without cv_folds)."""
    sel = metrics.get("selection")
    if not sel:
        return ["", "## Model selection", "", "None: the settings below were fixed in advance."]
    rows = sorted(sel["candidates"], key=lambda r: r["cv_loss"])
    lines = ["", "## Model selection", "",
             f"{sel['folds']}-fold cross-validation by prompt over the {sel['pool_pairs']} train + validation pairs "
             f"(the held-out pairs were never looked at); in each fold, a share of the training prompts was kept "
             f"for early stopping. {len(rows)} candidates; the lowest mean fold Bradley–Terry loss wins: "
             + ", ".join(f"`{k}={v}`" for k, v in sel["selected"].items()) + ". The retrained head's held-out "
             "accuracy above is the only held-out measurement.", "",
             "| candidate | mean CV loss | mean CV accuracy |", "| --- | --- | --- |"]
    lines += [f"| {', '.join(f'{k}={v}' for k, v in r['settings'].items())} | {r['cv_loss']:.4f} | "
              f"{r['cv_accuracy']:.3f} |" for r in rows]
    return lines


def run(config) -> int:
    """`preforch rm train`: train, then print each objective's held-out accuracy."""
    metrics = run_rm_train(config).metrics
    for objective, m in metrics.get("objectives", {config.objective: metrics}).items():
        lo, hi = m["heldout_accuracy_ci95"]
        longer = m["baselines"]["longer_reply_wins"]
        print(f"{objective}: held-out pairwise accuracy {m['heldout_accuracy']:.3f} (95% CI {lo:.3f}-{hi:.3f}, "
              f"{m['n_pairs']['heldout']} pairs; the longer reply wins {longer:.3f})")
    print(f"wrote {config.output_dir}")
    next_step(f"use it as a scorer: scorers: [{{type: heads, path: {config.output_dir}}}] in a score, adapter or "
              "generate config")
    return 0
