"""MODEL_CARD.md of reward heads trained with encoder LoRA: one section per objective (data, split, held-out
accuracy with its interval per source, against "the longer reply wins"), then the shared training settings."""

from __future__ import annotations

__all__ = ["render_lora_card"]


def _objective_lines(objective: str, m: dict, bootstrap: int, seed: int) -> list[str]:
    n, p = m["n_pairs"], m["n_prompts"]
    lo, hi = m["heldout_accuracy_ci95"]
    longer = m["baselines"]["longer_reply_wins"]
    lines = [
        f"## {objective}",
        "",
        f"- Data: `{m['data']['source']}`, {m['data']['pairs']} pairs.",
        f"- Split by prompt (seed {seed}, the hash split the adapter uses): train {n['train']} pairs "
        f"({p['train']} prompts), validation (early stopping) {n['val']} pairs ({p['val']} prompts), held out "
        f"{n['heldout']} pairs ({p['heldout']} prompts), never trained on nor used to stop.",
        "",
        f"Held-out pairwise accuracy **{m['heldout_accuracy']:.3f}** (95% bootstrap interval over held-out prompts, "
        f"{bootstrap} resamples: {lo:.3f}–{hi:.3f}); the longer reply wins on {longer:.3f} of the same pairs, the "
        f"shorter on {m['baselines']['shorter_reply_wins']:.3f}. Train {m['train_accuracy']:.3f}, validation "
        f"{m['val_accuracy']:.3f}.",
    ]
    if m.get("heldout_by_kind"):
        lines += ["", "| source | held-out pairs | accuracy | 95% interval | the longer reply wins |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {kind} | {k['pairs']} | {k['accuracy']:.3f} | {k['accuracy_ci95'][0]:.3f}–"
                  f"{k['accuracy_ci95'][1]:.3f} | {k['longer_reply_wins']:.3f} |"
                  for kind, k in m["heldout_by_kind"].items()]
    return lines + [""]


def render_lora_card(metrics: dict) -> str:
    cfg = metrics["config"]
    lo = metrics["lora"]
    objectives = list(metrics["objectives"])
    lines = [
        f"# Reward heads: {', '.join(objectives)}",
        "",
        f"Bradley–Terry reward heads (−log σ(r(x, y⁺) − r(x, y⁻))) on `{cfg['encoder']}` with LoRA adapters "
        f"(rank {lo['rank']}, alpha {lo['alpha']}, on {', '.join(lo['targets'])} of the top {lo['layers']} layers; "
        f"{lo['parameters']:,} parameters in `encoder_lora.safetensors`) trained together with the heads"
        + (", each head on its own pairs" if len(objectives) > 1 else "")
        + ". The adapters are merged into the encoder at load, so all heads share one encoder pass at the plain "
        "encoder's cost. Raw scores are unbounded logits: higher is better on the objective; compare them within "
        "an objective and normalise before mixing objectives.",
        "",
    ]
    for objective, m in metrics["objectives"].items():
        lines += _objective_lines(objective, m, cfg["bootstrap"], cfg["seed"])
    settings = {k: cfg[k] for k in ("input_format", "max_length", "prompt_tokens", "pooling", "features", "hidden",
                                     "dropout", "lora_rank", "lora_alpha", "lora_layers", "lora_lr", "lora_dropout",
                                     "epochs", "patience", "batch_size", "lr", "weight_decay")}
    lines += [
        "## Training",
        "",
        f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run (early stopping on the mean validation "
        f"loss of all heads); frozen-layer encoding {metrics['encode_seconds']} s, training "
        f"{metrics['train_seconds']} s. Validation loss by epoch: "
        + ", ".join(f"{h['val_loss']:.4f}" for h in metrics["history"]) + ".",
        "",
        "Settings: " + ", ".join(f"`{k}={v}`" for k, v in settings.items()) + ".",
        "",
        "Limits: small data, one language (English), and the labels' own biases (HH harmless raters reward "
        "refusals; UltraFeedback is GPT-4-rated; CoCoNot's preferred replies are GPT-4's). The HH text is red-team "
        "material.",
        "",
    ]
    return "\n".join(lines)
