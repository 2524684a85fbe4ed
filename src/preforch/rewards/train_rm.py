"""Train one reward head with the Bradley–Terry loss −log σ(r(x, y⁺) − r(x, y⁻)) on chosen/rejected pairs.

The encoder is frozen by default: its token states are computed once per text and cached, so each epoch
only runs the small head. Pairs are split BY PROMPT into held-out / validation / training: a held-out
prompt's pairs are never trained on nor used for early stopping (validation comes from the training part).
The output folder is a heads folder (config.json + model.safetensors) plus MODEL_CARD.md and metrics.json.

Model selection (``cv_folds`` ≥ 2) never looks at the held-out pairs: each candidate of ``cv_grid`` is scored by
k-fold cross-validation BY PROMPT over the train + validation pairs (each fold's training part keeps its own
validation share for early stopping), the candidate with the lowest mean fold Bradley–Terry loss wins (loss,
a proper score, is far less noisy than accuracy on a few hundred pairs; the mean fold accuracy is reported too),
and the final head is trained with it on the usual train split. ``margin_weighting`` / ``min_margin`` use the
rating margin of each pair (a ``margin`` column, or UltraFeedback's ``metadata.score_chosen − score_rejected``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from preforch.config import field, to_dict
from preforch.conversation import as_conversation
from preforch.data.split import fingerprints
from preforch.data.split import split_by_prompt as split_prompts
from preforch.errors import PreforchError
from preforch.rewards.heads import (
    EncodedPairs,
    HeadsConfig,
    HeadSpec,
    InputFormat,
    Pooling,
    SharedEncoderHeads,
)
from preforch.types import PreferenceData

log = logging.getLogger(__name__)
CV_SETTINGS = ("pooling", "features", "hidden", "dropout", "epochs", "patience", "batch_size", "lr",
               "weight_decay", "margin_weighting", "min_margin")  # what cv_grid may vary
MarginWeighting = Literal["none", "margin"]


@dataclass
class RMTrainConfig:
    """Settings of `preforch rm train`."""

    data: str = field("embedded:hh", help="preference data file (needs a rejected column), or an embedded set: "
                                          "embedded:hh (harmless), embedded:hh-helpful, embedded:ultrafeedback "
                                          "(ties dropped), embedded:helpful (hh-helpful + ultrafeedback)")
    objective: str = field("harmless", help="objective name of the trained head")
    output_dir: str = field("runs/rm", help="folder written: config.json, model.safetensors, MODEL_CARD.md, metrics.json")
    overwrite: bool = field(False, help="replace an existing output folder")
    encoder: str = field("embedded:minilm", help="sentence encoder folder, or embedded:minilm")
    input_format: InputFormat = field("prompt_response", help="encoder input: [CLS] prompt-tail [SEP] response-head "
                                                              "[SEP], or the response alone")
    max_length: int = field(256, help="encoder tokens per (prompt, response)")
    prompt_tokens: int = field(64, help="tokens the prompt's end keeps at least (more when the response is short)")
    pooling: Pooling = field("response_mean", help="how the head pools the token states")
    features: list[str] = field(["response"], help="pooled features: response, prompt, product, difference, length (log response tokens)")
    hidden: int = field(0, help="MLP hidden width; 0 means a linear head")
    dropout: float = field(0.0, help="dropout in the head")
    finetune_encoder: bool = field(False, help="also train the encoder (slow; no embedding cache)")
    encoder_lr: float = field(2e-5, help="encoder learning rate when finetune_encoder")
    epochs: int = field(40, help="maximum epochs")
    patience: int = field(6, help="stop after this many epochs without a better validation loss")
    batch_size: int = field(64, help="pairs per step")
    lr: float = field(1e-3, help="head learning rate (AdamW)")
    weight_decay: float = field(0.01, help="AdamW weight decay")
    heldout_fraction: float = field(0.2, help="share of PROMPTS held out for the final accuracy (the same prompts "
                                              "the adapter's test split holds out with test_fraction 0.2, seed 0)")
    val_fraction: float = field(0.15, help="share of prompts used for early stopping (not trained on)")
    seed: int = field(0, help="seed for the split, initialisation and shuffling")
    limit: int | None = field(None, help="use only the first N pairs (tests, quick runs)")
    bootstrap: int = field(1000, help="bootstrap resamples (over held-out prompts) for the 95% interval")
    encode_batch_size: int = field(32, help="rows per encoder pass")
    device: str = field("cpu", help="torch device")
    progress: bool = field(True, help="show progress bars")
    references: dict = field({}, help="reference accuracies measured elsewhere (name: accuracy), shown in the card")
    margin_weighting: MarginWeighting = field("none", help="'margin': weight each training pair's loss by its "
                                                           "rating margin (divided by the mean margin)")
    min_margin: float = field(0.0, help="train only on pairs whose rating margin is at least this (0: all)")
    cv_folds: int = field(0, help="k >= 2: pick the cv_grid candidate with the lowest mean k-fold (by prompt) "
                                  "Bradley-Terry loss over train + validation pairs (never the held-out ones)")
    cv_grid: dict = field({}, help="setting: [values] tried by cv_folds (all combinations); settings: "
                                   + ", ".join(CV_SETTINGS))

    def __post_init__(self) -> None:
        if self.input_format not in get_args(InputFormat) or self.pooling not in get_args(Pooling):
            raise PreforchError(f"rm train: input_format {self.input_format!r} / pooling {self.pooling!r} unknown")
        for name in ("heldout_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise PreforchError(f"rm train: {name} must be in (0, 1), got {getattr(self, name)}")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.bootstrap < 0:
            raise PreforchError("rm train: epochs, batch_size and patience must be >= 1, bootstrap >= 0")
        if not self.objective:
            raise PreforchError("rm train: objective must be a non-empty name")
        if self.margin_weighting not in get_args(MarginWeighting) or self.min_margin < 0:
            raise PreforchError(f"rm train: margin_weighting {self.margin_weighting!r} (expected one of "
                                f"{get_args(MarginWeighting)}) / min_margin {self.min_margin} (expected >= 0)")
        bad = [k for k, v in self.cv_grid.items() if k not in CV_SETTINGS or not isinstance(v, list) or not v]
        if bad or self.cv_folds == 1 or self.cv_folds < 0 or (self.cv_grid and not self.cv_folds):
            raise PreforchError(f"rm train: cv_folds {self.cv_folds} must be 0 or >= 2 (and >= 2 with a cv_grid); "
                                f"cv_grid keys {bad} need a non-empty list and one of {list(CV_SETTINGS)}")
        if self.cv_folds and self.finetune_encoder:
            raise PreforchError("rm train: cv_folds needs the frozen encoder (finetune_encoder: false)")
        self.head_spec()  # validates pooling/features/hidden/dropout

    def head_spec(self) -> HeadSpec:
        return HeadSpec(objective=self.objective, pooling=self.pooling, features=list(self.features),
                        hidden=self.hidden, dropout=self.dropout)


#: File in a heads folder listing fingerprints of every prompt the head was trained or early-stopped on.
TRAINING_PROMPTS_NAME = "training_prompts.json"


@dataclass
class RMTrainResult:
    model: SharedEncoderHeads
    metrics: dict
    trained_prompts: list[str] = dataclasses.field(default_factory=list)  # fingerprints (train + val prompts)


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Mean of −log σ(r⁺ − r⁻). Shapes: [N], [N] → []."""
    return -F.logsigmoid(chosen - rejected).mean()


def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Per pair: 1 if r⁺ > r⁻, 0.5 on a tie, else 0. Shape: [N]."""
    return (chosen > rejected).astype(np.float64) + 0.5 * (chosen == rejected)


def bootstrap_interval(values: np.ndarray, groups: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of the mean, resampling whole groups (prompts) with replacement."""
    if n == 0 or len(values) == 0:
        return float("nan"), float("nan")
    uniq, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(uniq))
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(uniq), size=(n, len(uniq)))  # [B, G]
    means = sums[picks].sum(1) / counts[picks].sum(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def split_by_prompt(prompts, heldout_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of train / val / heldout by prompt (:func:`preforch.data.split.split_by_prompt`: a prompt's side
    depends on the prompt and the seed alone, so the adapter with the same fractions holds out the same prompts)."""
    split = split_prompts(prompts, val_fraction, heldout_fraction, seed)
    return {"train": split.train, "val": split.val, "heldout": split.test}


def load_pairs(data: str, limit: int | None = None) -> PreferenceData:
    """An ``embedded:`` set (in file order) or any file `load_preference_data` reads; needs rejected."""
    from preforch.data.example import is_embedded, load_embedded

    if is_embedded(data):
        pairs = load_embedded(data, seed=None)
    else:
        from preforch.data.load import load_preference_data

        pairs = load_preference_data(data)
    if pairs.rejected is None:
        raise PreforchError(f"{pairs.source}: no 'rejected' column; reward-model training needs chosen/rejected pairs")
    if limit is not None:
        pairs = pairs.subset(np.arange(min(limit, len(pairs))))
    if len(pairs) < 3:
        raise PreforchError(f"{pairs.source}: {len(pairs)} pairs; at least 3 are needed")
    return pairs


class StateCache:
    """Frozen-encoder token states per row, computed once (float16, trimmed to each row's length)."""

    def __init__(self, model: SharedEncoderHeads, prompts: list, responses: list[str], batch_size: int,
                 progress: bool) -> None:
        rows = model.build_inputs(prompts, responses)
        self.states: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        self.starts = [row[1] for row in rows]
        self.full_lengths = [row[2] for row in rows]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for idx in tqdm(batches, desc="encode (cached)", disable=not progress, unit="batch"):
            enc = model.encoder_forward([rows[i] for i in idx])
            for b, i in enumerate(idx):
                self.states[i] = enc.states[b, : len(rows[i][0])].to(torch.float16).cpu().clone()  # [T, D]

    def collate(self, idx: list[int] | np.ndarray, device) -> EncodedPairs:
        if getattr(self, "_padded", None) is None:  # one padded copy, so batches are cheap slices
            self._padded = torch.nn.utils.rnn.pad_sequence(self.states, batch_first=True)  # [M, T, D] fp16
            self._lengths = torch.tensor([s.shape[0] for s in self.states])  # [M]
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        lengths = self._lengths[idx_t]  # [B]
        t = int(lengths.max())
        pos = torch.arange(t)
        mask = (pos[None, :] < lengths[:, None]).long()  # [B, T]
        starts = torch.tensor([self.starts[i] for i in idx_t.tolist()])
        resp = ((pos[None, :] >= starts[:, None]) & (pos[None, :] < lengths[:, None] - 1)).long()  # [B, T]
        states = self._padded[idx_t, :t].float()  # [B, T, D]
        full = torch.tensor([self.full_lengths[i] for i in idx_t.tolist()], dtype=torch.float32)  # [B]
        return EncodedPairs(states.to(device), mask.to(device), resp.to(device), full.to(device))


class PairScorer:
    """Rewards of rows (chosen rows 0..N−1, rejected rows N..2N−1) for the head being trained."""

    def __init__(self, model: SharedEncoderHeads, config: RMTrainConfig, pairs: PreferenceData,
                 cache: StateCache | None) -> None:
        self.model, self.config = model, config
        self.head = model.heads[config.objective]
        self.cache = cache
        self.rows = None
        self.features = None
        if config.finetune_encoder:
            self.rows = model.build_inputs(pairs.prompts * 2, pairs.chosen + (pairs.rejected or []))
        elif config.pooling != "response_attention":  # pooling has no parameters: pool once per cache
            pooled = cache.__dict__.setdefault("_pooled", {})
            key = (config.pooling, tuple(config.features), str(model.device))
            if key not in pooled:
                with torch.no_grad():
                    n = len(cache.states)
                    pooled[key] = torch.cat([self.head.pool(cache.collate(list(range(i, min(i + 256, n))),
                                                                          model.device))
                                             for i in range(0, n, 256)])  # [2N, F]
            self.features = pooled[key]

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        """Shape: [len(idx)]."""
        if self.features is not None:
            return self.head.forward_features(self.features[idx])
        if self.rows is not None:
            rows = [self.rows[i] for i in idx]
            return self.head(self.model.encoder_forward(rows, grad=torch.is_grad_enabled()))
        return self.head(self.cache.collate(idx, self.model.device))


def _rewards(scorer: PairScorer, idx: np.ndarray, n: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Rewards of the chosen and rejected responses of pairs ``idx``. Shapes: [M], [M]."""
    out = []
    with torch.no_grad():
        for rows in (idx, idx + n):
            out.append(np.concatenate([scorer(rows[i : i + batch]).double().cpu().numpy()
                                       for i in range(0, len(rows), batch)]) if len(rows) else np.zeros(0))
    return out[0], out[1]


def _val_loss(scorer: PairScorer, idx: np.ndarray, n: int) -> float:
    c, r = _rewards(scorer, idx, n)
    return float(bradley_terry_loss(torch.from_numpy(c), torch.from_numpy(r)))


def build_model(config: RMTrainConfig, encoder=None) -> SharedEncoderHeads:
    heads_cfg = HeadsConfig(heads=[config.head_spec()], encoder=config.encoder, input_format=config.input_format,
                            max_length=config.max_length, prompt_tokens=config.prompt_tokens)
    return SharedEncoderHeads(heads_cfg, encoder=encoder, device=config.device)


def load_margins(data: str, n: int) -> np.ndarray:
    """Rating margin per pair, in :func:`load_pairs` order: a ``margin`` column, else UltraFeedback's
    ``metadata.score_chosen − score_rejected`` (ties dropped as the loader does). Shape: [n]."""
    from preforch.data.load import read_table

    drop_ties = data == "embedded:ultrafeedback"  # as load_ultrafeedback does
    if drop_ties:
        from preforch.data.example import UF_FILE

        data = str(UF_FILE)
    elif data.startswith("embedded:"):
        raise PreforchError(f"data {data!r}: has no rating margins (margin_weighting / min_margin need them)")
    out = []
    for i, row in enumerate(read_table(data), 1):
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


def _pair_weights(config: RMTrainConfig, margins: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    """Per-pair loss weights (mean 1 over ``idx``), or None for a plain mean."""
    if config.margin_weighting == "none" or margins is None:
        return None
    w = margins.clip(min=0.0)
    return w / max(float(w[idx].mean()), 1e-12)  # [N]


def _train_rows(config: RMTrainConfig, margins: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
    return idx[margins[idx] >= config.min_margin] if config.min_margin > 0 and margins is not None else idx


def prompt_folds(prompts, idx: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint parts of the rows ``idx``; all rows of one prompt land in the same part."""
    keyed = [as_conversation(p).key() for p in prompts]
    uniq = sorted({keyed[i] for i in idx})
    if len(uniq) < k:
        raise PreforchError(f"rm train: cv_folds {k} but only {len(uniq)} distinct prompts outside the held-out split")
    part = {uniq[j]: rank % k for rank, j in enumerate(np.random.default_rng(seed).permutation(len(uniq)))}
    labels = np.array([part[keyed[i]] for i in idx])
    return [idx[labels == f] for f in range(k)]


def _fit(config: RMTrainConfig, model: SharedEncoderHeads, scorer: PairScorer, train: np.ndarray, val: np.ndarray,
         n: int, weights: np.ndarray | None) -> tuple[int, list[dict]]:
    """Train ``model``'s heads on pairs ``train``, early-stopping on ``val``; loads the best epoch's weights."""
    groups = [{"params": list(model.heads.parameters()), "lr": config.lr}]
    if config.finetune_encoder:
        groups.append({"params": list(model.encoder.model.parameters()), "lr": config.encoder_lr})
    optim = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    gen = np.random.default_rng(config.seed)
    best = (float("inf"), 0, copy.deepcopy(model.heads.state_dict()), None)
    history = []
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {config.objective}", disable=not config.progress)
    for epoch in bar:
        model.heads.train()
        if config.finetune_encoder:
            model.encoder.model.train()
        losses = []
        train_idx = gen.permutation(train)
        for i in range(0, len(train_idx), config.batch_size):
            idx = train_idx[i : i + config.batch_size]
            r = scorer(np.concatenate([idx, idx + n]))  # [2B]
            per_pair = -F.logsigmoid(r[: len(idx)] - r[len(idx) :])  # [B]
            loss = per_pair.mean() if weights is None else (per_pair * torch.as_tensor(
                weights[idx], dtype=per_pair.dtype, device=per_pair.device)).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
        model.heads.eval()
        model.encoder.model.eval()
        val_loss = _val_loss(scorer, val, n)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss})
        bar.set_postfix(train=f"{history[-1]['train_loss']:.4f}", val=f"{val_loss:.4f}")
        if val_loss < best[0] - 1e-6:
            enc_state = copy.deepcopy(model.encoder.model.state_dict()) if config.finetune_encoder else None
            best = (val_loss, epoch, copy.deepcopy(model.heads.state_dict()), enc_state)
        elif epoch - best[1] >= config.patience:
            break
    model.heads.load_state_dict(best[2])
    if best[3] is not None:
        model.encoder.model.load_state_dict(best[3])
    model.heads.eval()
    model.encoder.model.eval().requires_grad_(False)
    return best[1], history


def cross_validate(config: RMTrainConfig, pairs: PreferenceData, pool: np.ndarray, encoder,
                   cache: StateCache, margins: np.ndarray | None) -> dict:
    """Mean k-fold (by prompt) accuracy and loss of one setting over the pairs ``pool``; ``encoder`` is loaded."""
    n, accs, losses, sizes = len(pairs), [], [], []
    for f, fold in enumerate(prompt_folds(pairs.prompts, pool, config.cv_folds, config.seed)):
        rest = np.setdiff1d(pool, fold)
        inner_val = prompt_folds(pairs.prompts, rest, max(2, int(round(1 / config.val_fraction))), config.seed + f)[0]
        train = _train_rows(config, margins, np.setdiff1d(rest, inner_val))
        torch.manual_seed(config.seed)
        model = build_model(config, encoder)
        scorer = PairScorer(model, config, pairs, cache)
        _fit(config, model, scorer, train, inner_val, n, _pair_weights(config, margins, train))
        c, r = _rewards(scorer, fold, n)
        accs.append(float(pairwise_accuracy(c, r).mean()))
        losses.append(float(bradley_terry_loss(torch.from_numpy(c), torch.from_numpy(r))))
        sizes.append(len(fold))
    w = np.asarray(sizes, dtype=np.float64) / sum(sizes)
    return {"cv_accuracy": float(np.dot(w, accs)), "cv_loss": float(np.dot(w, losses)), "fold_accuracy": accs}


def select_by_cv(config: RMTrainConfig, pairs: PreferenceData, pool: np.ndarray, encoder, cache: StateCache,
                 margins: np.ndarray | None) -> tuple[RMTrainConfig, list[dict]]:
    """Every cv_grid combination, cross-validated on ``pool``; returns the winner's config and all results."""
    keys = list(config.cv_grid)
    results = []
    for values in itertools.product(*(config.cv_grid[k] for k in keys)):
        candidate = dataclasses.replace(config, **dict(zip(keys, values)), progress=False)
        res = cross_validate(candidate, pairs, pool, encoder, cache, margins)
        results.append({"settings": dict(zip(keys, values)), **res})
        log.info("cv %s: accuracy %.3f, loss %.4f", results[-1]["settings"], res["cv_accuracy"], res["cv_loss"])
    best = min(results, key=lambda r: (r["cv_loss"], -r["cv_accuracy"]))
    return dataclasses.replace(config, **best["settings"]), results


def train_reward_head(config: RMTrainConfig, pairs: PreferenceData | None = None, encoder=None,
                      cache: StateCache | None = None) -> RMTrainResult:
    """Train one head (after the cv_grid selection, if any); returns the model and metrics (nothing is written;
    see :func:`run_rm_train`). ``cache`` lets several runs on the same data and encoder input share one pass.
    """
    t0 = time.perf_counter()
    pairs = pairs if pairs is not None else load_pairs(config.data, config.limit)
    n = len(pairs)
    margins = (load_margins(config.data, n) if config.margin_weighting != "none" or config.min_margin > 0
               or "margin_weighting" in config.cv_grid or "min_margin" in config.cv_grid else None)
    torch.manual_seed(config.seed)
    model = build_model(config, encoder)
    split = split_by_prompt(pairs.prompts, config.heldout_fraction, config.val_fraction, config.seed)
    if config.finetune_encoder:
        model.encoder.model.train().requires_grad_(True)
    elif cache is None:
        cache = StateCache(model, pairs.prompts * 2, pairs.chosen + pairs.rejected, config.encode_batch_size,
                           config.progress)
    t_encode = time.perf_counter() - t0
    selection = None
    if config.cv_folds:
        pool = np.sort(np.concatenate([split["train"], split["val"]]))  # never the held-out pairs
        grid = config.cv_grid or {"weight_decay": [config.weight_decay]}  # no grid: just report the CV score
        chosen, results = select_by_cv(dataclasses.replace(config, cv_grid=grid), pairs, pool, model.encoder,
                                       cache, margins)
        config = dataclasses.replace(chosen, cv_grid=config.cv_grid)
        selection = {"folds": config.cv_folds, "pool_pairs": int(len(pool)), "candidates": results,
                     "selected": {k: getattr(config, k) for k in grid}}
        torch.manual_seed(config.seed)
        model = build_model(config, model.encoder)
    scorer = PairScorer(model, config, pairs, cache)
    train = _train_rows(config, margins, split["train"])
    best_epoch, history = _fit(config, model, scorer, train, split["val"], n, _pair_weights(config, margins, train))
    metrics = evaluate_split(scorer, pairs, split, config)
    metrics.update(best_epoch=best_epoch, epochs_run=len(history), history=history, selection=selection,
                   trained_pairs=int(len(train)), encode_seconds=round(t_encode, 2),
                   train_seconds=round(time.perf_counter() - t0 - t_encode, 2), config=to_dict(config))
    seen = fingerprints(pairs.prompts[i] for i in np.concatenate([split["train"], split["val"]]))
    return RMTrainResult(model=model, metrics=metrics, trained_prompts=seen)


def evaluate_split(scorer: PairScorer, pairs: PreferenceData, split: dict[str, np.ndarray],
                   config: RMTrainConfig) -> dict:
    """Pairwise accuracy per split, the held-out bootstrap interval and length baselines on held-out pairs."""
    n = len(pairs)
    out: dict = {"n_pairs": {k: int(len(v)) for k, v in split.items()},
                 "n_prompts": {k: len({pairs.prompts[i] for i in v}) for k, v in split.items()}}
    for name, idx in split.items():
        c, r = _rewards(scorer, idx, n)
        acc = pairwise_accuracy(c, r)
        out[f"{name}_accuracy"] = float(acc.mean())
        if name == "heldout":
            groups = np.array([pairs.prompts[i].key() for i in idx], dtype=object)
            out["heldout_accuracy_ci95"] = list(bootstrap_interval(acc, groups.astype(str), config.bootstrap,
                                                                   config.seed))
    held = split["heldout"]
    short_c = np.array([-len(pairs.chosen[i].split()) for i in held], dtype=np.float64)
    short_r = np.array([-len(pairs.rejected[i].split()) for i in held], dtype=np.float64)
    out["baselines"] = {"shorter_reply_wins": float(pairwise_accuracy(short_c, short_r).mean()),
                        "longer_reply_wins": float(pairwise_accuracy(-short_c, -short_r).mean())}
    return out


def run_rm_train(config: RMTrainConfig, encoder=None, cache: StateCache | None = None) -> RMTrainResult:
    """Train, then write the heads folder + MODEL_CARD.md + metrics.json into ``config.output_dir``.

    ``encoder`` / ``cache`` (optional) reuse a loaded encoder and its cached token states of the same data.
    """
    from preforch.atomic import refuse_existing, staged_dir, write_json, write_text

    out = Path(config.output_dir)
    refuse_existing(out, config.overwrite)  # fail before the training, not after
    pairs = load_pairs(config.data, config.limit)
    result = train_reward_head(config, pairs, encoder=encoder, cache=cache)
    result.metrics["data"] = {"source": config.data if config.data.startswith("embedded:") else pairs.source,
                              "pairs": len(pairs)}
    with staged_dir(out, overwrite=config.overwrite) as tmp:
        if config.finetune_encoder:
            from preforch.models.encoders import _file_fingerprint
            from preforch.rewards.heads import LOCAL_ENCODER

            result.model.encoder.model.save_pretrained(tmp / LOCAL_ENCODER, safe_serialization=True)
            result.model.encoder.tokenizer.save_pretrained(tmp / LOCAL_ENCODER)
            result.model.config.encoder = LOCAL_ENCODER
            result.model.config.encoder_fingerprint = _file_fingerprint(tmp / LOCAL_ENCODER)
        result.model.write_files(tmp)
        write_json(tmp / "metrics.json", result.metrics)
        write_json(tmp / TRAINING_PROMPTS_NAME, {
            "what": "sha256[:16] of each prompt (preforch.data.split.prompt_fingerprint) this head was trained or "
                    "early-stopped on; preforch evaluate excludes these prompts from test rows",
            "data": result.metrics["data"]["source"], "fingerprints": result.trained_prompts})
        write_text(tmp / "MODEL_CARD.md", render_model_card(result.metrics))
    log.info("held-out accuracy %.3f (95%% CI %.3f–%.3f) on %d pairs; wrote %s", result.metrics["heldout_accuracy"],
             *result.metrics["heldout_accuracy_ci95"], result.metrics["n_pairs"]["heldout"], out)
    return result


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
