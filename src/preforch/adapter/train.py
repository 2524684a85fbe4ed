"""Training the preference adapter: split by prompt, fit the normaliser, build targets, fit the MLP."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from preforch.adapter.config import AdapterConfig
from preforch.adapter.model import PreferenceAdapter
from preforch.adapter.targets import adapter_loss, entropy, forward_kl, target_weights
from preforch.adapter.uncertainty import fit_uncertainty
from preforch.adapter.views import view_inputs, view_messages
from preforch.conversation import Conversation
from preforch.data.split import PromptSplit, split_by_prompt
from preforch.errors import PreforchError
from preforch.models.encoders import load_encoder
from preforch.models.paths import cache_root
from preforch.rewards.normalize import Normalizer
from preforch.types import AdapterReport, PreferenceData

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained adapter and where each row went. No prompt appears in two of train / val / test."""

    adapter: PreferenceAdapter
    report: AdapterReport  # validation split (the split early stopping used)
    test_report: AdapterReport | None  # test split (untouched by training and early stopping); None without one
    split: PromptSplit
    val_embeddings: torch.Tensor  # [V, D] prompt embeddings of the validation rows
    test_embeddings: torch.Tensor  # [T, D] prompt embeddings of the test rows

    @property
    def train_index(self) -> np.ndarray:
        return self.split.train

    @property
    def val_index(self) -> np.ndarray:
        return self.split.val

    @property
    def test_index(self) -> np.ndarray:
        return self.split.test


def embed_texts(encoder, texts: list[str], batch_size: int = 64, cache: bool = True,
                progress: bool = False) -> torch.Tensor:
    """Embeddings of the distinct texts, computed once and cached on disk by (encoder, texts).

    Shape: [N, D] in the order of ``texts``.
    """
    unique = list(dict.fromkeys(texts))
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
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    position = {p: i for i, p in enumerate(unique)}
    return emb[[position[p] for p in texts]]


def embed_views(encoder, prompts: list[Conversation], views: list[str], batch_size: int = 64, cache: bool = True,
                progress: bool = False) -> dict[str, tuple[list[str], torch.Tensor]]:
    """For each view: the encoder input texts [N] and their embeddings [N, D]."""
    out = {}
    for view in dict.fromkeys(views):
        texts = view_inputs(prompts, view, encoder)
        out[view] = (texts, embed_texts(encoder, texts, batch_size, cache, progress))
    return out


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
        raise PreforchError(f"{data.source}: loss {config.loss!r} needs rejected responses ('rejected' or "
                            f"'score_rejected.<objective>' columns); for preferred responses only set loss: forward_kl")


def _report(adapter: PreferenceAdapter, emb: torch.Tensor, target: torch.Tensor, delta: torch.Tensor | None,
            kinds: list[str] | None, **extra) -> AdapterReport:
    """Shapes: emb [V, D], target [V, K], delta = s̃⁺ − s̃⁻ [V, K] (None without rejected replies)."""
    w = adapter.predict_from_embeddings(emb)  # [V, K]
    agree = (w.argmax(-1) == target.argmax(-1)).float()  # [V]
    won = None
    if delta is not None:  # as preforch.evaluate.metrics.pair_outcomes counts: ties half
        margin = (w * delta.to(w.device)).sum(-1)  # [V]
        won = (margin > 0).float() + 0.5 * (margin == 0).float()  # [V]
    names = adapter.objectives
    per_kind, per_kind_top1, per_kind_pairwise = {}, {}, {}
    if kinds is not None:
        for kind in sorted(set(kinds)):
            mask = torch.tensor([k == kind for k in kinds])
            per_kind[kind] = dict(zip(names, w[mask].mean(0).tolist()))
            per_kind_top1[kind] = float(agree[mask].mean())
            if won is not None:
                per_kind_pairwise[kind] = float(won[mask].mean())
    return AdapterReport(
        objectives=names, kl=float(forward_kl(torch.log(w.clamp_min(1e-12)), target)), top1=float(agree.mean()),
        entropy=float(entropy(w).mean()), target_entropy=float(entropy(target).mean()),
        mean_weights=dict(zip(names, w.mean(0).tolist())),
        mean_target_weights=dict(zip(names, target.mean(0).tolist())),
        per_kind=per_kind, per_kind_top1=per_kind_top1, loss=adapter.config.loss,
        pairwise_accuracy=None if won is None else float(won.mean()), per_kind_pairwise=per_kind_pairwise, **extra)


def _load_encoder(config: AdapterConfig):
    return load_encoder(config.encoder, config.encoder_path, config.encoder_max_length, config.device,
                        config.trust_remote_code, config.encoder_layer, config.truncation_side)


def _training_rows(config: AdapterConfig, data: PreferenceData, split: PromptSplit, encoder,
                   embeddings: torch.Tensor, extra: dict[str, torch.Tensor] | None, progress: bool
                   ) -> tuple[torch.Tensor, np.ndarray]:
    """Embeddings of every training row [M, D] and the data row each one stands for [M].

    The training conversations under ``prompt_view``, plus, for each view in ``train_views``, the conversations
    that read differently under that view (a single-turn conversation reads the same in every view).
    """
    rows, parts = [split.train], [embeddings[split.train]]
    train_prompts = [data.prompts[i] for i in split.train]
    for view in dict.fromkeys(config.train_views):
        if view == config.prompt_view:
            continue
        differs = np.array([view_messages(p, view) != view_messages(p, config.prompt_view) for p in train_prompts],
                           dtype=bool)
        if extra is not None and view in extra:
            other = extra[view][split.train]  # [N_train, D]
        else:
            encoder = encoder if encoder is not None else _load_encoder(config)
            other = embed_texts(encoder, view_inputs(train_prompts, view, encoder), config.embed_batch_size,
                                config.cache_embeddings, progress)
        rows.append(split.train[differs])
        parts.append(other[torch.as_tensor(differs)])
    return torch.cat(parts), np.concatenate(rows)


def fit_mlp(mlp, config: AdapterConfig, loss_of, train_emb: torch.Tensor, rows_t: torch.Tensor,
            val_emb: torch.Tensor, val_rows: torch.Tensor, progress: bool = False, seed: int | None = None
            ) -> tuple[int, list[dict]] | None:
    """AdamW with early stopping on the validation loss; ``mlp`` ends with its best state. ``loss_of(net, x,
    rows)`` is the training loss of embeddings x [B, D] standing for data rows ``rows`` [B]. Returns (best
    epoch, history), or None when the validation loss was never finite."""
    optim = torch.optim.AdamW(mlp.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed if seed is None else seed)
    best, best_state, best_epoch, stale, history = float("inf"), None, 0, 0, []
    bar = tqdm(range(1, config.epochs + 1), desc="adapter", unit="epoch", disable=not progress)
    for epoch in bar:
        mlp.train()
        total = 0.0
        for batch in torch.randperm(len(rows_t), generator=gen).split(config.batch_size):
            loss = loss_of(mlp, train_emb[batch], rows_t[batch])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(batch)
        mlp.eval()
        with torch.no_grad():
            val = float(loss_of(mlp, val_emb, val_rows))
        history.append({"epoch": epoch, "train_loss": total / len(rows_t), "val_loss": val})
        bar.set_postfix(train=f"{total / len(rows_t):.4f}", val=f"{val:.4f}")
        if val < best - 1e-6:
            best, best_state, best_epoch, stale = val, copy.deepcopy(mlp.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is None:
        return None
    mlp.load_state_dict(best_state)
    mlp.eval()
    return best_epoch, history


def train_adapter(config: AdapterConfig, data: PreferenceData, encoder=None, progress: bool = True,
                  embeddings: torch.Tensor | None = None,
                  extra_embeddings: dict[str, torch.Tensor] | None = None) -> TrainResult:
    """Fit a PreferenceAdapter on rows with raw scores, split by prompt into train / val / test.

    ``embeddings`` [N, D] (rows under ``prompt_view``) and ``extra_embeddings`` (view → [N, D], for
    ``train_views``) may be given to skip encoding; otherwise the encoder is loaded from the config.
    """
    _check_data(config, data)
    config = dataclasses.replace(config, loss=config.resolved_loss(data.scores_rejected is not None))
    started = time.perf_counter()
    split = split_by_prompt(data.prompts, config.val_fraction, config.test_fraction, config.seed)
    norm = Normalizer(list(data.objectives), method=config.norm_method, clip=config.norm_clip)
    fit_on = [data.scores_chosen[split.train]]
    if data.scores_rejected is not None:
        fit_on.append(data.scores_rejected[split.train])
    norm.fit(np.concatenate(fit_on))
    s_pos = torch.tensor(norm.transform(data.scores_chosen), dtype=torch.float32)  # [N, K]
    target = torch.tensor(target_weights(s_pos.numpy(), config.tau), dtype=torch.float32)  # [N, K]
    delta = None
    if data.scores_rejected is not None:
        delta = s_pos - torch.tensor(norm.transform(data.scores_rejected), dtype=torch.float32)  # [N, K]
    if embeddings is None:
        encoder = encoder if encoder is not None else _load_encoder(config)
        texts = view_inputs(data.prompts, config.prompt_view, encoder)
        embeddings = embed_texts(encoder, texts, config.embed_batch_size, config.cache_embeddings, progress)
    if embeddings.shape[0] != len(data):
        raise PreforchError(f"embeddings have {embeddings.shape[0]} rows, data has {len(data)}")
    train_emb, train_rows = _training_rows(config, data, split, encoder, embeddings, extra_embeddings, progress)
    torch.manual_seed(config.seed)
    adapter = PreferenceAdapter(config, data.objectives, norm, int(embeddings.shape[1]), encoder=encoder)
    mlp = adapter.mlp
    emb = embeddings.to(config.device, torch.float32)  # [N, D]
    train_emb = train_emb.to(config.device, torch.float32)  # [M, D]
    tgt, dlt = target.to(config.device), None if delta is None else delta.to(config.device)
    rows_t = torch.as_tensor(train_rows)  # [M] data row of each training row
    va = torch.as_tensor(split.val)
    mlp.fit_input_stats(train_emb)

    def loss_of(net, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        log_w = torch.log_softmax(net(x), dim=-1)  # [B, K]
        return adapter_loss(config.loss, log_w, tgt[idx], None if dlt is None else dlt[idx], config.mix_weight,
                            config.pairwise_beta)

    fit = fit_mlp(mlp, config, loss_of, train_emb, rows_t, emb[va], va, progress)
    if fit is None:
        raise PreforchError(f"{data.source}: the validation loss was never finite; check the scores (extreme "
                            "values?) and the learning rate")
    best_epoch, history = fit
    if config.uncertainty:
        def fit_head(head, x: torch.Tensor, rows: torch.Tensor, seed: int) -> None:
            fit_mlp(head, config, loss_of, x, rows, emb[va], va, False, seed)

        adapter.uncertainty = fit_uncertainty(mlp, config, fit_head, train_emb, rows_t, emb[va])

    def kinds_of(index: np.ndarray) -> list[str] | None:
        return None if data.kinds is None else [data.kinds[i] for i in index]

    sizes = dict(n_train=len(split.train), n_val=len(split.val), n_test=len(split.test),
                 n_train_views=len(train_rows))
    def delta_of(index) -> torch.Tensor | None:
        return None if delta is None else delta[index]

    report = _report(adapter, emb[va], target[va], delta_of(va), kinds_of(split.val), **sizes, epochs=len(history),
                     best_epoch=best_epoch, train_seconds=time.perf_counter() - started, history=history,
                     split=split.describe())
    test_report = None
    if len(split.test):
        te = torch.as_tensor(split.test)
        test_report = _report(adapter, emb[te], target[te], delta_of(te), kinds_of(split.test), **sizes,
                              split=split.describe(), split_name="test")
    return TrainResult(adapter=adapter, report=report, test_report=test_report, split=split,
                       val_embeddings=emb[va].cpu(), test_embeddings=emb[torch.as_tensor(split.test)].cpu())


def format_report(report: AdapterReport) -> str:
    """The report as a few aligned lines for the terminal."""
    names = report.objectives
    if report.split_name == "test":
        head = (f"held-out test: {report.n_test} rows whose prompts were never trained on, early-stopped on or used "
                "for any choice")
    else:
        head = (f"adapter: {report.n_train} training / {report.n_val} validation / {report.n_test} test rows (split "
                f"by prompt), {report.epochs} epochs (best {report.best_epoch}), {report.train_seconds:.1f}s")
    # lead with what the loss fits: a pairwise-trained adapter is not asked to match w*, so its KL / top-1
    # against w* (0.46 "agreement", say) reads as failure when it is not (issue 25)
    pairwise = report.loss in ("pairwise", "mix") and report.pairwise_accuracy is not None
    kl_part = (f"KL(w*||w) {report.kl:.4f}   top-1 agreement {report.top1:.3f}   "
               f"weight entropy {report.entropy:.3f} nats (targets {report.target_entropy:.3f})")
    kl_line = f"{report.split_name} {kl_part}"
    lines = [head]
    if pairwise:
        lead = (f"{report.split_name} pairwise accuracy {report.pairwise_accuracy:.3f} (pairs whose preferred reply "
                f"gets the larger R = w(x)·s~; what the {report.loss} loss fits)")
        lines += [lead, f"  against w* (not what the {report.loss} loss fits): {kl_part}"]
    else:
        lines.append(kl_line + (f"   pairwise accuracy {report.pairwise_accuracy:.3f}"
                                if report.pairwise_accuracy is not None else ""))
    lines += ["mean weights      " + "  ".join(f"{n} {report.mean_weights[n]:.3f}" for n in names),
              "mean targets w*   " + "  ".join(f"{n} {report.mean_target_weights[n]:.3f}" for n in names)]
    for kind, weights in report.per_kind.items():
        measure = (f"pairwise {report.per_kind_pairwise[kind]:.3f}" if pairwise
                   else f"top-1 {report.per_kind_top1[kind]:.3f}")
        lines.append(f"  kind {kind:<20} " + "  ".join(f"{n} {weights[n]:.3f}" for n in names) + f"   {measure}")
    return "\n".join(lines)


