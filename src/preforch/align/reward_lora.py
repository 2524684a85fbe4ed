"""Reward heads that learn their encoder (here, under align/, because it trains through PEFT): LoRA (PEFT) on the encoder's top layers, trained with the heads by the
Bradley–Terry loss −log σ(r(x, y⁺) − r(x, y⁻)); several objectives share the one adapted encoder, each head
trained on its own pairs (``heads: {objective: data}``), so scoring stays one encoder pass for all of them.

Cost: the layers below the adapted ones are frozen, so their states are computed once per text and cached
(float16); each step runs only the top ``lora_layers`` layers, forward and backward. Each objective's pairs are
split BY PROMPT with the project's shared hash split (:func:`preforch.data.split.split_by_prompt`, the same
prompts the adapter holds out); early stopping reads the validation pairs of all heads, the held-out pairs are
scored once, at the end. Reading data and writing the folder is the job's (:mod:`preforch.recipes.rm_train`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from preforch.artifacts import read_object, read_safetensors, write_safetensors
from preforch.atomic import write_json
from preforch.config import to_dict
from preforch.data.split import fingerprints
from preforch.errors import PreforchError
from preforch.rewards import lora
from preforch.rewards.head_config import HeadsConfig, HeadSpec, LoraSpec, RMTrainConfig
from preforch.rewards.heads import EncodedPairs, SharedEncoderHeads
from preforch.rewards.train_head import RMTrainResult, evaluate_split, split_by_prompt
from preforch.types import PreferenceData

__all__ = ["EpochCheckpoint", "LoraStates", "add_lora", "train_lora_heads"]

log = logging.getLogger(__name__)



def add_lora(model: nn.Module, spec: LoraSpec, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    """The encoder wrapped by PEFT with trainable adapters on its top layers (everything else frozen)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise PreforchError(f"rm train: lora_rank needs PEFT ({err}); install preforch[align]") from None
    names = sorted(lora.lora_targets(model, spec))
    torch.manual_seed(seed)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=dropout, target_modules=names, bias="none")
    with warnings.catch_warnings():  # PEFT's own notice about a transformers rename, not ours to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


class LoraStates:
    """The frozen lower layers' output for every row of every objective, computed once (float16, trimmed)."""

    def __init__(self, model: SharedEncoderHeads, spec, data: dict[str, PreferenceData], batch_size: int,
                 progress: bool) -> None:
        self.offsets, rows = {}, []
        for objective, pairs in data.items():  # rows: chosen 0..n−1, then rejected n..2n−1, per objective
            self.offsets[objective] = len(rows)
            rows += model.build_inputs(pairs.prompts * 2, pairs.chosen + pairs.rejected)
        self.rows = rows
        self.states: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        encoder = model.encoder.model
        for idx in tqdm(batches, desc="encode frozen layers (cached)", disable=not progress, unit="batch"):
            ids, mask, _, types = model.input_tensors([rows[i] for i in idx])
            with torch.inference_mode():
                low = lora.lower_states(encoder, spec, ids, mask, types)  # [B, T, D]
            for b, i in enumerate(idx):
                self.states[i] = low[b, : len(rows[i][0])].to(torch.float16).cpu().clone()

    def collate(self, model: SharedEncoderHeads, idx: list[int]) -> tuple[torch.Tensor, EncodedPairs]:
        """Padded lower states and the masks of rows ``idx``. Shapes: [B, T, D] and EncodedPairs masks [B, T]."""
        _, mask, resp, _ = model.input_tensors([self.rows[i] for i in idx])
        t = mask.shape[1]
        states = torch.zeros(len(idx), t, self.states[idx[0]].shape[-1])
        for b, i in enumerate(idx):
            states[b, : self.states[i].shape[0]] = self.states[i].float()
        full = torch.tensor([self.rows[i][2] for i in idx], dtype=torch.float32)
        return states.to(model.device), EncodedPairs(states, mask, resp, full.to(model.device))


@dataclass
class _Task:
    objective: str
    pairs: PreferenceData
    split: dict[str, np.ndarray]
    offset: int


class _Rewards:
    """Rewards of one objective's rows (chosen 0..n−1, rejected n..2n−1) through the adapted top layers; the
    callable :func:`preforch.rewards.train_head.evaluate_split` reads."""

    def __init__(self, model, encoder, spec, cache: LoraStates, task: _Task) -> None:
        self.model, self.encoder, self.spec, self.cache, self.task = model, encoder, spec, cache, task

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        idx = [self.task.offset + int(i) for i in rows]
        states, enc = self.cache.collate(self.model, idx)
        enc.states = lora.top_layers_forward(self.encoder, self.spec, states, enc.mask)  # [B, T, D]
        return self.model.heads[self.task.objective](enc)  # [B]


def _batches(tasks: list[_Task], gen: np.random.Generator, batch_size: int, cache: LoraStates) -> list[list]:
    """Shuffled (task, pair) batches; within windows of 16 batches, pairs of similar length go together."""
    items = [(t, int(i)) for t in range(len(tasks)) for i in tasks[t].split["train"]]
    items = [items[j] for j in gen.permutation(len(items))]
    window = batch_size * 16
    out = []
    for w in range(0, len(items), window):
        part = sorted(items[w : w + window], key=lambda ti: len(cache.rows[tasks[ti[0]].offset + ti[1]][0]))
        out += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [out[j] for j in gen.permutation(len(out))]


def _step_loss(model, encoder, spec, cache: LoraStates, tasks: list[_Task], batch: list) -> torch.Tensor:
    """Mean Bradley–Terry loss of one batch of (task, pair) items, each on its own objective's head."""
    rows = [tasks[t].offset + i for t, i in batch] + [tasks[t].offset + len(tasks[t].pairs) + i for t, i in batch]
    states, enc = cache.collate(model, rows)
    enc.states = lora.top_layers_forward(encoder, spec, states, enc.mask)  # [2B, T, D]
    n, losses = len(batch), []
    for t in sorted({t for t, _ in batch}):
        sel = torch.tensor([j for j, (tt, _) in enumerate(batch) if tt == t])
        both = torch.cat([sel, sel + n])
        sub = EncodedPairs(enc.states[both], enc.mask[both], enc.response_mask[both], enc.response_tokens[both])
        r = model.heads[tasks[t].objective](sub)  # [2b]
        losses.append(-F.logsigmoid(r[: len(sel)] - r[len(sel) :]))
    return torch.cat(losses).mean()


def _val_loss(scorers: list[_Rewards], tasks: list[_Task]) -> float:
    """Mean Bradley–Terry loss over the validation pairs of every head."""
    total, count = 0.0, 0
    with torch.no_grad():
        for scorer, task in zip(scorers, tasks):
            val, n = task.split["val"], len(task.pairs)
            for i in range(0, len(val), 128):
                chunk = val[i : i + 128]
                r = scorer(np.concatenate([chunk, chunk + n]))
                total += float(-F.logsigmoid(r[: len(chunk)] - r[len(chunk) :]).sum())
                count += len(chunk)
    return total / max(count, 1)


def train_lora_heads(config: RMTrainConfig, data: dict[str, PreferenceData], encoder=None,
                     checkpoint_dir: Path | None = None) -> RMTrainResult:
    """Train LoRA on the encoder's top layers together with one head per objective of ``data``; returns the model
    with the adapters merged into its encoder (``model.lora_tensors`` holds them, for saving) and the metrics
    (``metrics["objectives"][objective]``: held-out accuracy, interval, baselines, per kind). With
    ``checkpoint_dir``, each finished epoch is saved there and a later call with the same settings resumes after
    it (the frozen layers' states are recomputed)."""
    t0 = time.perf_counter()
    spec = config.lora_spec()
    if spec is None:
        raise PreforchError("rm train: train_lora_heads needs lora_rank > 0")
    for objective, pairs in data.items():
        if pairs.rejected is None or len(pairs) < 3:
            raise PreforchError(f"rm train: head {objective!r} needs at least 3 chosen/rejected pairs")
    torch.manual_seed(config.seed)
    specs = [HeadSpec(objective=o, pooling=config.pooling, features=list(config.features), hidden=config.hidden,
                      dropout=config.dropout) for o in data]
    heads_cfg = HeadsConfig(heads=specs, encoder=config.encoder, input_format=config.input_format,
                            max_length=config.max_length, prompt_tokens=config.prompt_tokens)
    model = SharedEncoderHeads(heads_cfg, encoder=encoder, device=config.device)
    base = model.encoder.model
    lora.top_indices(base, spec)  # fails early on too many layers
    cache = LoraStates(model, spec, data, config.encode_batch_size, config.progress)
    tasks = [_Task(o, p, split_by_prompt(p.prompts, config.heldout_fraction, config.val_fraction, config.seed),
                   cache.offsets[o]) for o, p in data.items()]
    t_encode = time.perf_counter() - t0
    adapted = add_lora(base, spec, dropout=config.lora_dropout, seed=config.seed)
    lora_params = [p for p in adapted.parameters() if p.requires_grad]
    optim = torch.optim.AdamW([{"params": list(model.heads.parameters()), "lr": config.lr},
                               {"params": lora_params, "lr": config.lora_lr}], weight_decay=config.weight_decay)
    scorers = [_Rewards(model, adapted, spec, cache, t) for t in tasks]
    resume = EpochCheckpoint(checkpoint_dir, config) if checkpoint_dir else None
    best, history = _run_epochs(config, model, adapted, spec, optim, cache, tasks, scorers, resume)
    model.heads.load_state_dict(best[2]["heads"])
    adapted.load_state_dict(best[2]["lora"], strict=False)
    model.heads.eval()
    adapted.eval()
    tensors = lora.lora_tensors(adapted)
    merged = adapted.merge_and_unload().eval().requires_grad_(False)
    model.encoder._model = merged
    model.attach_lora(spec, tensors)
    per_objective = {}
    for scorer, task in zip(scorers, tasks):
        scorer.encoder = merged
        per_objective[task.objective] = evaluate_split(scorer, task.pairs, task.split, config)
        per_objective[task.objective]["data"] = {"source": config.head_data()[task.objective], "pairs": len(task.pairs)}
    metrics = {"objectives": per_objective, "best_epoch": best[1], "epochs_run": len(history), "history": history,
               "encode_seconds": round(t_encode, 2), "train_seconds": round(time.perf_counter() - t0 - t_encode, 2),
               "lora": {"rank": spec.rank, "alpha": spec.alpha, "layers": spec.layers, "targets": spec.targets,
                        "parameters": int(sum(t.numel() for t in tensors.values()))},
               "config": to_dict(config)}
    seen = sorted({fp for t in tasks for fp in
                   fingerprints(t.pairs.prompts[i] for i in np.concatenate([t.split["train"], t.split["val"]]))})
    return RMTrainResult(model=model, metrics=metrics, trained_prompts=seen)


def _run_epochs(config: RMTrainConfig, model, adapted, spec, optim, cache: LoraStates, tasks: list[_Task],
                scorers: list[_Rewards], resume: EpochCheckpoint | None) -> tuple[tuple, list[dict]]:
    """Epochs until ``config.epochs`` or ``patience`` epochs without a better mean validation loss (resuming after
    the last saved epoch); returns (best validation loss, best epoch, its states) and the history."""
    gen = np.random.default_rng(config.seed)
    best = (float("inf"), 0, None)
    history = []
    if resume is not None and resume.exists():
        best, history = resume.load(model.heads, adapted, optim, gen)
        log.info("resuming after epoch %d (%s)", len(history), resume.folder)
    for epoch in range(len(history) + 1, config.epochs + 1):
        if history and epoch - 1 - best[1] >= config.patience:
            break
        batches = _batches(tasks, gen, config.batch_size, cache)
        model.heads.train()
        adapted.train()
        losses = []
        bar = tqdm(batches, desc=f"train heads + LoRA, epoch {epoch}", disable=not config.progress, unit="batch")
        for batch in bar:
            loss = _step_loss(model, adapted, spec, cache, tasks, batch)
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        model.heads.eval()
        adapted.eval()
        val = _val_loss(scorers, tasks)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val})
        log.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, history[-1]["train_loss"], val)
        if val < best[0] - 1e-6:
            best = (val, epoch, {"heads": copy.deepcopy(model.heads.state_dict()),
                                 "lora": {k: v.detach().clone() for k, v in adapted.state_dict().items()
                                          if "lora_" in k}})
        if resume is not None:
            resume.save(model.heads, adapted, optim, gen, best, history)
        if epoch - best[1] >= config.patience:
            break
    return best, history


_RUN_ONLY = ("output_dir", "overwrite", "progress", "bootstrap", "references", "device", "encode_batch_size")


class EpochCheckpoint:
    """The training state after each epoch (adapters, heads, optimizer moments, the best epoch so far, the
    shuffling generator) in ``folder``: ``state.safetensors`` + ``state.json``, written atomically; a run with other
    training settings is refused rather than resumed."""

    def __init__(self, folder: Path, config: RMTrainConfig) -> None:
        self.folder = Path(folder)
        settings = {k: v for k, v in to_dict(config).items() if k not in _RUN_ONLY}
        self.settings_hash = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def save(self, heads, adapted, optim, gen, best, history) -> None:
        tensors = {f"heads.{k}": v for k, v in heads.state_dict().items()}
        tensors.update({f"lora.{k}": v for k, v in adapted.state_dict().items() if "lora_" in k})
        tensors.update({f"best.heads.{k}": v for k, v in best[2]["heads"].items()})
        tensors.update({f"best.lora.{k}": v for k, v in best[2]["lora"].items()})
        tensors["rng.torch"] = torch.get_rng_state()  # dropout draws: a resumed run continues the same stream
        state = optim.state_dict()
        for i, moments in state["state"].items():
            tensors.update({f"optim.{i}.{k}": torch.as_tensor(v, dtype=torch.float32) for k, v in moments.items()})
        self.folder.mkdir(parents=True, exist_ok=True)
        write_safetensors(self.folder / "state.safetensors.tmp", tensors)
        (self.folder / "state.safetensors.tmp").replace(self.folder / "state.safetensors")
        write_json(self.folder / "state.json", {
            "settings_hash": self.settings_hash, "history": history, "best_val_loss": best[0], "best_epoch": best[1],
            "param_groups": state["param_groups"], "generator": gen.bit_generator.state})

    def load(self, heads, adapted, optim, gen) -> tuple[tuple, list[dict]]:
        meta = read_object(self.folder / "state.json", "rm train checkpoint")
        if meta.get("settings_hash") != self.settings_hash:
            raise PreforchError(f"{self.folder}: a checkpoint of an rm train run with other settings; rerun with "
                                "those settings to resume, or delete the folder to start afresh")
        t = read_safetensors(self.folder / "state.safetensors")
        heads.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("heads.")})
        adapted.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("lora.")}, strict=False)
        moments: dict[int, dict] = {}
        for key, value in t.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                moments.setdefault(int(i), {})[name] = value
        optim.load_state_dict({"state": moments, "param_groups": meta["param_groups"]})
        gen.bit_generator.state = meta["generator"]
        torch.set_rng_state(t["rng.torch"])
        best_state = {"heads": {k[11:]: v for k, v in t.items() if k.startswith("best.heads.")},
                      "lora": {k[10:]: v for k, v in t.items() if k.startswith("best.lora.")}}
        return (meta["best_val_loss"], meta["best_epoch"], best_state), meta["history"]
