"""Train one reward head with the Bradley–Terry loss −log σ(r(x, y⁺) − r(x, y⁻)) on chosen/rejected pairs in memory.

The encoder is frozen by default: its token states are computed once per text and cached, so each epoch
only runs the small head. Pairs are split BY PROMPT into held-out / validation / training: a held-out
prompt's pairs are never trained on nor used for early stopping (validation comes from the training part).

Model selection (``cv_folds`` ≥ 2) never looks at the held-out pairs: each candidate of ``cv_grid`` is scored by
k-fold cross-validation BY PROMPT over the train + validation pairs (each fold's training part keeps its own
validation share for early stopping), the candidate with the lowest mean fold Bradley–Terry loss wins (loss,
a proper score, is far less noisy than accuracy on a few hundred pairs; the mean fold accuracy is reported too),
and the final head is trained with it on the usual train split. ``margin_weighting`` / ``min_margin`` weight or
filter pairs by their rating margin. Reading the pairs and writing the heads folder is the job's
(:mod:`preforch.recipes.rm_train`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from preforch.config import to_dict
from preforch.conversation import as_conversation
from preforch.data.split import fingerprints
from preforch.data.split import split_by_prompt as split_prompts
from preforch.errors import PreforchError
from preforch.rewards.head_config import CV_SETTINGS, RMTrainConfig
from preforch.rewards.heads import EncodedPairs, HeadsConfig, SharedEncoderHeads
from preforch.stats import bootstrap_interval
from preforch.types import PreferenceData

__all__ = ["CV_SETTINGS", "PairScorer", "RMTrainConfig", "RMTrainResult", "StateCache", "bradley_terry_loss",
           "build_model", "cross_validate", "evaluate_split", "pairwise_accuracy", "prompt_folds", "select_by_cv",
           "split_by_prompt", "train_reward_head"]

log = logging.getLogger(__name__)


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


def split_by_prompt(prompts, heldout_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of train / val / heldout by prompt (:func:`preforch.data.split.split_by_prompt`: a prompt's side
    depends on the prompt and the seed alone, so the adapter with the same fractions holds out the same prompts)."""
    split = split_prompts(prompts, val_fraction, heldout_fraction, seed)
    return {"train": split.train, "val": split.val, "heldout": split.test}


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


def train_reward_head(config: RMTrainConfig, pairs: PreferenceData, encoder=None, cache: StateCache | None = None,
                      margins: np.ndarray | None = None) -> RMTrainResult:
    """Train one head (after the cv_grid selection, if any) on ``pairs``; returns the model and metrics (nothing is
    read or written here; see :mod:`preforch.recipes.rm_train`). ``cache`` lets several runs on the same data and
    encoder input share one pass; ``margins`` [N]: each pair's rating margin, needed by margin_weighting,
    min_margin and a cv_grid over them.
    """
    t0 = time.perf_counter()
    n = len(pairs)
    if config.needs_margins() and margins is None:
        raise PreforchError("rm train: margin_weighting / min_margin need each pair's rating margin; none was given")
    margins = margins if config.needs_margins() else None
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
    if pairs.kinds is not None and len(set(pairs.kinds)) > 1:  # held-out accuracy per source, next to its baselines
        c, r = _rewards(scorer, held, n)
        acc = pairwise_accuracy(c, r)
        longer = pairwise_accuracy(-short_c, -short_r)
        kinds = np.array([pairs.kinds[i] for i in held], dtype=object)
        groups = np.array([pairs.prompts[i].key() for i in held], dtype=object).astype(str)
        out["heldout_by_kind"] = {
            kind: {"pairs": int((kinds == kind).sum()), "accuracy": float(acc[kinds == kind].mean()),
                   "accuracy_ci95": list(bootstrap_interval(acc[kinds == kind], groups[kinds == kind],
                                                            config.bootstrap, config.seed)),
                   "longer_reply_wins": float(longer[kinds == kind].mean())}
            for kind in sorted(set(kinds))}
    return out
