"""Training the preference adapter: split by prompt, fit the normaliser, build targets, fit the MLP."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass


import numpy as np
import torch
from tqdm.auto import tqdm

from preforch.adapter.config import AdapterConfig
from preforch.adapter.model import PreferenceAdapter
from preforch.adapter.targets import adapter_loss, entropy, forward_kl, target_weights
from preforch.errors import PreforchError
from preforch.rewards.normalize import Normalizer
from preforch.types import AdapterReport, PreferenceData

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    adapter: PreferenceAdapter
    report: AdapterReport
    train_index: np.ndarray  # rows used for training
    val_index: np.ndarray  # rows held out (their prompts never appear in training)
    val_embeddings: torch.Tensor  # [V, D] prompt embeddings of the held-out rows


def split_by_prompt(prompts: list[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val) such that no prompt appears on both sides."""
    unique = sorted(set(prompts))
    if len(unique) < 2:
        raise PreforchError(f"need at least 2 distinct prompts to hold some out, got {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_val = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    val_prompts = {unique[i] for i in order[:n_val]}
    is_val = np.array([p in val_prompts for p in prompts])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def embed_prompts(encoder, prompts: list[str], batch_size: int = 64, cache: bool = True,
                  progress: bool = False) -> torch.Tensor:
    """Embeddings of the distinct prompts, computed once and cached on disk by (encoder, texts).

    Shape: [N, D] in the order of ``prompts``.
    """
    from safetensors.torch import load_file, save_file

    from preforch.models.paths import cache_root

    unique = list(dict.fromkeys(prompts))
    key = hashlib.sha256((encoder.identity() + "\x00" + "\x00".join(unique)).encode()).hexdigest()[:32]
    path = cache_root() / "embeddings" / f"{key}.safetensors"
    emb = None
    if cache and path.is_file():
        try:
            emb = load_file(str(path))["embeddings"]
        except Exception:  # a damaged cache entry is recomputed, never trusted
            emb = None
        if emb is not None and emb.shape[0] != len(unique):
            emb = None
    if emb is None:
        emb = encoder.encode(unique, batch_size=batch_size, progress=progress)  # [U, D]
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            save_file({"embeddings": emb.contiguous()}, tmp)
            os.replace(tmp, path)
    position = {p: i for i, p in enumerate(unique)}
    return emb[[position[p] for p in prompts]]


def _check_data(config: AdapterConfig, data: PreferenceData) -> None:
    if data.scores_chosen is None:
        raise PreforchError(f"{data.source}: no scores for the preferred responses; give 'score.<objective>' columns "
                            "or configure scorers")
    if len(data.objectives) < 2:
        raise PreforchError(f"{data.source}: {len(data.objectives)} objective(s) {data.objectives}; at least 2 are needed")
    bad = ~np.isfinite(data.scores_chosen)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PreforchError(f"{data.source}: row {row + 1}, column 'score.{data.objectives[col]}': score is "
                            f"{data.scores_chosen[row, col]}, expected a finite number")
    if config.loss in ("pairwise", "mix") and data.scores_rejected is None:
        raise PreforchError(f"{data.source}: loss {config.loss!r} needs 'score_rejected.<objective>' columns")


def _report(adapter: PreferenceAdapter, emb: torch.Tensor, target: torch.Tensor, kinds: list[str] | None,
            **extra) -> AdapterReport:
    w = adapter.predict_from_embeddings(emb)  # [V, K]
    agree = (w.argmax(-1) == target.argmax(-1)).float()  # [V]
    names = adapter.objectives
    per_kind, per_kind_top1 = {}, {}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            mask = torch.tensor([k == kind for k in kinds])
            per_kind[kind] = dict(zip(names, w[mask].mean(0).tolist()))
            per_kind_top1[kind] = float(agree[mask].mean())
    return AdapterReport(
        objectives=names, kl=float(forward_kl(torch.log(w.clamp_min(1e-12)), target)), top1=float(agree.mean()),
        entropy=float(entropy(w).mean()), target_entropy=float(entropy(target).mean()),
        mean_weights=dict(zip(names, w.mean(0).tolist())),
        mean_target_weights=dict(zip(names, target.mean(0).tolist())),
        per_kind=per_kind, per_kind_top1=per_kind_top1, **extra)


def train_adapter(config: AdapterConfig, data: PreferenceData, encoder=None, progress: bool = True,
                  embeddings: torch.Tensor | None = None) -> TrainResult:
    """Fit a PreferenceAdapter on rows with raw scores. ``embeddings`` [N, D] may be given to skip encoding."""
    _check_data(config, data)
    started = time.perf_counter()
    train_idx, val_idx = split_by_prompt(data.prompts, config.val_fraction, config.seed)
    norm = Normalizer(list(data.objectives), method=config.norm_method, clip=config.norm_clip)
    fit_on = [data.scores_chosen[train_idx]]
    if data.scores_rejected is not None:
        fit_on.append(data.scores_rejected[train_idx])
    norm.fit(np.concatenate(fit_on))
    s_pos = torch.tensor(norm.transform(data.scores_chosen), dtype=torch.float32)  # [N, K]
    target = torch.tensor(target_weights(s_pos.numpy(), config.tau), dtype=torch.float32)  # [N, K]
    delta = None
    if data.scores_rejected is not None:
        delta = s_pos - torch.tensor(norm.transform(data.scores_rejected), dtype=torch.float32)  # [N, K]
    if embeddings is None:
        if encoder is None:
            from preforch.models.encoders import load_encoder

            encoder = load_encoder(config.encoder, config.encoder_path, config.encoder_max_length, config.device,
                                   config.trust_remote_code, config.encoder_layer)
        embeddings = embed_prompts(encoder, data.prompts, config.embed_batch_size, config.cache_embeddings, progress)
    if embeddings.shape[0] != len(data):
        raise PreforchError(f"embeddings have {embeddings.shape[0]} rows, data has {len(data)}")
    torch.manual_seed(config.seed)
    adapter = PreferenceAdapter(config, data.objectives, norm, int(embeddings.shape[1]), encoder=encoder)
    mlp = adapter.mlp
    optim = torch.optim.AdamW(mlp.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    emb = embeddings.to(config.device, torch.float32)
    tgt, dlt = target.to(config.device), None if delta is None else delta.to(config.device)
    tr, va = torch.as_tensor(train_idx), torch.as_tensor(val_idx)
    mlp.fit_input_stats(emb[tr])

    def loss_on(idx: torch.Tensor) -> torch.Tensor:
        log_w = torch.log_softmax(mlp(emb[idx]), dim=-1)  # [B, K]
        return adapter_loss(config.loss, log_w, tgt[idx], None if dlt is None else dlt[idx], config.mix_weight,
                            config.pairwise_beta)

    gen = torch.Generator().manual_seed(config.seed)
    best, best_state, best_epoch, stale, history = float("inf"), None, 0, 0, []
    bar = tqdm(range(1, config.epochs + 1), desc="adapter", unit="epoch", disable=not progress)
    for epoch in bar:
        mlp.train()
        total = 0.0
        for batch in tr[torch.randperm(len(tr), generator=gen)].split(config.batch_size):
            loss = loss_on(batch)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(batch)
        mlp.eval()
        with torch.no_grad():
            val = float(loss_on(va))
        history.append({"epoch": epoch, "train_loss": total / len(tr), "val_loss": val})
        bar.set_postfix(train=f"{total / len(tr):.4f}", val=f"{val:.4f}")
        if val < best - 1e-6:
            best, best_state, best_epoch, stale = val, copy.deepcopy(mlp.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    mlp.load_state_dict(best_state)
    mlp.eval()
    kinds = None if data.kinds is None else [data.kinds[i] for i in val_idx]
    report = _report(adapter, emb[va], target[va], kinds, n_train=len(train_idx), n_val=len(val_idx),
                     epochs=len(history), best_epoch=best_epoch, train_seconds=time.perf_counter() - started,
                     history=history)
    return TrainResult(adapter=adapter, report=report, train_index=train_idx, val_index=val_idx,
                       val_embeddings=emb[va].cpu())


def format_report(report: AdapterReport) -> str:
    """The report as a few aligned lines for the terminal."""
    names = report.objectives
    lines = [
        f"adapter: {report.n_train} training rows, {report.n_val} validation rows (split by prompt), "
        f"{report.epochs} epochs (best {report.best_epoch}), {report.train_seconds:.1f}s",
        f"validation KL(w*||w) {report.kl:.4f}   top-1 agreement {report.top1:.3f}   "
        f"weight entropy {report.entropy:.3f} nats (targets {report.target_entropy:.3f})",
        "mean weights      " + "  ".join(f"{n} {report.mean_weights[n]:.3f}" for n in names),
        "mean targets w*   " + "  ".join(f"{n} {report.mean_target_weights[n]:.3f}" for n in names),
    ]
    for kind, weights in report.per_kind.items():
        lines.append(f"  kind {kind:<16} " + "  ".join(f"{n} {weights[n]:.3f}" for n in names)
                     + f"   top-1 {report.per_kind_top1[kind]:.3f}")
    return "\n".join(lines)


