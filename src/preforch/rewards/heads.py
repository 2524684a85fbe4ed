"""Reward heads on one shared, frozen encoder: one encoder pass over (prompt, response) feeds K small heads.

The encoder input is built at the token level so truncation is deliberate: ``[CLS] prompt-tail [SEP]
response-head [SEP]``. The response keeps its start (where a refusal or an answer shows), the prompt keeps
its end (the last human turn, right before the reply). The prompt gets at least ``prompt_tokens`` tokens
when it has them, and more when the response is short. ``input_format: response`` feeds the response alone.

Each head pools the same token states its own way (mean over all tokens, mean over the response segment,
or learned attention over the response segment), may combine the pooled response vector with the
prompt-segment mean (product, difference), and maps the features to one raw reward with a linear layer or
a small MLP. Adding an objective adds a head, never an encoder pass.

Saved as a folder: ``config.json`` (sorted, with a format version) + ``model.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from preforch import __version__
from preforch.artifacts import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_tensors,
    legacy_fingerprint,
    read_object,
    read_safetensors,
    require_format,
    require_keys,
    strict_settings,
    write_safetensors,
)
from preforch.atomic import staged_dir, write_json
from preforch.conversation import as_conversations
from preforch.errors import PreforchError
from preforch.models.encoders import SentenceEncoder
from preforch.models.paths import resolve_encoder_path
from preforch.rewards.head_config import (
    HEADS_FORMAT,
    LOCAL_ENCODER,
    LORA_NAME,
    TRAINING_PROMPTS_NAME,
    Feature,
    HeadsConfig,
    HeadSpec,
    InputFormat,
    LoraSpec,
    Pooling,
    read_training_prompts,
)
from preforch.rewards.lora import lora_fingerprint, merge_lora

__all__ = ["HEADS_FORMAT", "LOCAL_ENCODER", "TRAINING_PROMPTS_NAME", "EncodedPairs", "Feature", "HeadSpec", "HeadsConfig",
           "InputFormat", "Pooling", "RewardHead", "SharedEncoderHeads", "read_heads_folder", "read_training_prompts"]

_CHARS_PER_TOKEN_CAP = 12  # prompts are cut to this many characters per token budget before tokenising
_RESPONSE_CHARS = 16384  # responses are tokenised up to here, so the length feature sees past max_length
Row = tuple[list[int], int, int]  # token ids, where the response starts, the response's full token count


@dataclass
class EncodedPairs:
    """Token states of one encoder pass. Shapes: states [N, T, D]; mask, response_mask [N, T] (0/1);
    response_tokens [N]: each response's token count before truncation (for the length feature)."""

    states: torch.Tensor
    mask: torch.Tensor
    response_mask: torch.Tensor
    response_tokens: torch.Tensor


def _masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(states.dtype)  # [N, T, 1]
    return (states * m).sum(1) / m.sum(1).clamp_min(1.0)  # [N, D]


class RewardHead(nn.Module):
    """Pooling + features + linear/MLP over shared token states. Output Shape: [N]."""

    def __init__(self, spec: HeadSpec, dim: int) -> None:
        super().__init__()
        self.spec = spec
        if spec.pooling == "response_attention":
            self.attention = nn.Linear(dim, 1)
        width = dim * sum(f != "length" for f in spec.features) + ("length" in spec.features)
        if spec.hidden:
            self.mlp = nn.Sequential(nn.Linear(width, spec.hidden), nn.GELU(), nn.Dropout(spec.dropout),
                                     nn.Linear(spec.hidden, 1))
        else:
            self.mlp = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(width, 1))

    def pool(self, enc: EncodedPairs) -> torch.Tensor:
        """The pooled features this head reads. Shape: [N, F]."""
        states = enc.states.float()  # [N, T, D]
        if self.spec.pooling == "mean":
            response = _masked_mean(states, enc.mask)
        elif self.spec.pooling == "response_mean":
            response = _masked_mean(states, enc.response_mask)
        else:
            logits = self.attention(states).squeeze(-1)  # [N, T]
            logits = logits.masked_fill(enc.response_mask == 0, torch.finfo(logits.dtype).min)
            response = torch.einsum("nt,ntd->nd", logits.softmax(-1), states)  # [N, D]
        prompt = None
        if any(f in ("prompt", "product", "difference") for f in self.spec.features):
            prompt_mask = enc.mask * (1 - enc.response_mask)  # includes [CLS]/[SEP], so never empty
            prompt = _masked_mean(states, prompt_mask)  # [N, D]
        parts = {"response": response, "prompt": prompt}
        if prompt is not None:
            parts["product"] = response * prompt
            parts["difference"] = response - prompt
        if "length" in self.spec.features:  # log of the untruncated response length, about [0, 1.4]
            parts["length"] = torch.log1p(enc.response_tokens.to(states.dtype)).unsqueeze(-1) / 5.5  # [N, 1]
        # each vector is layer-normalised on its own (no parameters), so the features are scale-free
        return torch.cat([parts[f] if f == "length" else F.layer_norm(parts[f], parts[f].shape[-1:])
                          for f in self.spec.features], dim=-1)  # [N, F]

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features).squeeze(-1)  # [N]

    def forward(self, enc: EncodedPairs) -> torch.Tensor:
        return self.forward_features(self.pool(enc))  # [N]


class SharedEncoderHeads:
    """A Scorer: K reward heads over ONE frozen encoder pass. ``score`` returns raw rewards [N, K]."""

    def __init__(self, config: HeadsConfig, encoder=None, heads: nn.ModuleDict | None = None,
                 device: str = "cpu", encoder_path: str | None = None) -> None:
        self.config = config
        if encoder is None:
            path = encoder_path or resolve_encoder_path(config.encoder)
            _refuse_custom_code(Path(path))
            encoder = SentenceEncoder(path, max_length=config.max_length, normalize=False, device=device)
        self.encoder = encoder
        self.device = encoder.device
        if not config.encoder_fingerprint:
            config.encoder_fingerprint = encoder._fingerprint
        elif config.encoder_fingerprint not in (encoder._fingerprint, legacy_fingerprint(encoder.path)):
            raise PreforchError(f"heads were trained on encoder {config.encoder_fingerprint}, but {encoder.path} "
                                f"is {encoder._fingerprint}; use the encoder they were trained on")
        self.lora_tensors: dict[str, torch.Tensor] | None = None
        if getattr(encoder, "lora_fingerprint", "") != config.lora_fingerprint:
            raise PreforchError(f"heads need an encoder with LoRA {config.lora_fingerprint or 'none'}, but the one "
                                f"given carries {getattr(encoder, 'lora_fingerprint', '') or 'none'}")
        self.heads = heads if heads is not None else nn.ModuleDict(
            {h.objective: RewardHead(h, encoder.dim) for h in config.heads})
        self.heads.to(self.device).eval()

    @property
    def objectives(self) -> list[str]:
        return [h.objective for h in self.config.heads]

    def identity(self) -> str:
        digest = hashlib.sha256(save({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}))
        digest.update(json.dumps(self._config_dict(), sort_keys=True).encode())
        return f"shared_heads:{self.encoder._fingerprint}:{digest.hexdigest()[:16]}"

    # ---- encoder input -------------------------------------------------------------------------------------
    def build_inputs(self, prompts, responses: list[str]) -> list[Row]:
        """Per row: ``[CLS] prompt-tail [SEP] response-head [SEP]`` ids, the response start, its full length.

        The prompt is the conversation's canonical text (:meth:`~preforch.conversation.Conversation.text`),
        so its tail is the final user turn."""
        prompts = [p.text() for p in as_conversations(prompts)]
        tok = self.encoder.tokenizer
        cfg = self.config
        budget = cfg.max_length - (3 if cfg.input_format == "prompt_response" else 2)
        cap = cfg.max_length * _CHARS_PER_TOKEN_CAP
        r_ids = tok([r[:_RESPONSE_CHARS] for r in responses], add_special_tokens=False, verbose=False)["input_ids"]
        if cfg.input_format == "response":
            return [([tok.cls_token_id] + r[:budget] + [tok.sep_token_id], 1, len(r)) for r in r_ids]
        p_ids = tok([p[-cap:] for p in prompts], add_special_tokens=False, verbose=False)["input_ids"]
        out = []
        for p, r in zip(p_ids, r_ids):
            n_prompt = min(len(p), max(cfg.prompt_tokens, budget - len(r)))
            n_resp = min(len(r), budget - n_prompt)
            p_kept = p[len(p) - n_prompt:]
            out.append(([tok.cls_token_id] + p_kept + [tok.sep_token_id] + r[:n_resp] + [tok.sep_token_id],
                        n_prompt + 2, len(r)))
        return out

    def input_tensors(self, rows: list[Row]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Prepared rows as right-padded tensors on the device: ids, attention mask, response mask, token types.
        Shapes: [N, T] each."""
        n, t = len(rows), max(len(row[0]) for row in rows)
        ids = torch.full((n, t), self.encoder.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros(n, t, dtype=torch.long)
        resp = torch.zeros(n, t, dtype=torch.long)
        types = torch.zeros(n, t, dtype=torch.long)
        for i, (row, start, _) in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            resp[i, start : len(row) - 1] = 1  # response tokens, without the final [SEP]
            if self.config.input_format == "prompt_response":
                types[i, start : len(row)] = 1
        return ids.to(self.device), mask.to(self.device), resp.to(self.device), types.to(self.device)

    def encoder_forward(self, rows: list[Row], grad: bool = False) -> EncodedPairs:
        """One encoder pass over prepared rows (right-padded). Shapes: [N, T, D], [N, T], [N, T], [N]."""
        ids, mask, resp, types = self.input_tensors(rows)
        with torch.set_grad_enabled(grad), torch.inference_mode(not grad):
            states = self.encoder.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        full = torch.tensor([row[2] for row in rows], dtype=torch.float32, device=self.device)  # [N]
        return EncodedPairs(states, mask, resp, full)

    def encode_pairs(self, prompts, responses: list[str]) -> EncodedPairs:
        """Token states of one batch (no batching inside). Shapes: [N, T, D], [N, T], [N, T]."""
        _check_lengths(prompts, responses)
        return self.encoder_forward(self.build_inputs(prompts, responses))

    # ---- scoring -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _score(self, names: list[str], prompts, responses: list[str], batch_size: int,
               progress: bool) -> np.ndarray:
        _check_lengths(prompts, responses)
        rows = self.build_inputs(prompts, responses)
        out = np.empty((len(rows), len(names)), dtype=np.float64)
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))  # length-sorted batches
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for idx in tqdm(batches, desc="score heads", disable=not progress, unit="batch"):
            enc = self.encoder_forward([rows[i] for i in idx])
            cols = [self.heads[name](enc).double().cpu() for name in names]  # K × [B]
            out[idx] = torch.stack(cols, dim=1).numpy()  # [B, K]
        return out

    def score(self, prompts, responses: list[str], batch_size: int = 32,
              progress: bool = False) -> np.ndarray:
        """All K heads from one encoder pass per batch. Shape: [N, K], float64 raw rewards."""
        return self._score(self.objectives, prompts, responses, batch_size, progress)

    def score_head(self, objective: str, prompts, responses: list[str], batch_size: int = 32,
                   progress: bool = False) -> np.ndarray:
        """One head alone (its own encoder pass). Shape: [N], float64."""
        if objective not in self.heads:
            raise PreforchError(f"no head {objective!r}; heads: {self.objectives}")
        return self._score([objective], prompts, responses, batch_size, progress)[:, 0]

    # ---- save / load ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"heads.{k}": v for k, v in self.heads.state_dict().items()}

    def _config_dict(self) -> dict:
        data = asdict(self.config)
        data["format_version"] = HEADS_FORMAT
        data["objectives"] = self.objectives
        return data

    def save_pretrained(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``path`` atomically."""
        with staged_dir(path, overwrite=overwrite) as tmp:
            self.write_files(tmp)
        return Path(path)

    def write_files(self, folder: Path) -> None:
        """Write config.json + model.safetensors into an existing (staged) folder."""
        data = self._config_dict()
        data["library_versions"] = {"preforch": __version__, "torch": torch.__version__.split("+")[0],
                                    "transformers": transformers.__version__, "safetensors": safetensors.__version__}
        write_json(folder / CONFIG_NAME, data)
        write_safetensors(folder / WEIGHTS_NAME, self.state_dict())
        if self.lora_tensors is not None:
            write_safetensors(folder / LORA_NAME, self.lora_tensors)

    def attach_lora(self, spec: LoraSpec, tensors: dict[str, torch.Tensor]) -> None:
        """Record the LoRA adapters already merged into this model's encoder (saved with the heads)."""
        self.lora_tensors = tensors
        self.config.encoder_lora = spec
        self.config.lora_fingerprint = lora_fingerprint(tensors)
        self.encoder.lora_fingerprint = self.config.lora_fingerprint

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", encoder=None,
                        encoder_path: str | None = None) -> SharedEncoderHeads:
        """Rebuild from config.json and load model.safetensors strictly (missing/extra/misshaped keys fail)."""
        config, tensors = read_heads_folder(path)
        lora_tensors = _read_lora(config, Path(path))  # None without encoder LoRA
        if encoder is None:
            if encoder_path is None and config.encoder == LOCAL_ENCODER:
                encoder_path = str(Path(path) / LOCAL_ENCODER)  # a fine-tuned encoder saved with the heads
            folder = encoder_path or resolve_encoder_path(config.encoder)
            _refuse_custom_code(Path(folder))
            encoder = SentenceEncoder(folder, max_length=config.max_length, normalize=False, device=device)
            if lora_tensors is not None:  # merged when the encoder's weights load (cached runs never load them)
                encoder.add_post_load(lambda m: merge_lora(m, lora_tensors, config.encoder_lora,
                                                           str(Path(path) / LORA_NAME)))
                encoder.lora_fingerprint = config.lora_fingerprint
        _check_tensors(config, tensors, encoder.dim, str(Path(path) / WEIGHTS_NAME))
        model = cls(config, encoder=encoder, device=device)
        model.load_tensors(tensors, source=str(Path(path) / WEIGHTS_NAME))
        model.lora_tensors = lora_tensors
        return model

    def load_tensors(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        expected = self.state_dict()
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        if missing or extra:
            raise PreforchError(f"{source}: weights do not match the config (missing {missing[:5]}, "
                                f"unexpected {extra[:5]})")
        for key, value in expected.items():
            if tuple(tensors[key].shape) != tuple(value.shape):
                raise PreforchError(f"{source}: tensor {key!r} has shape {tuple(tensors[key].shape)}, "
                                    f"expected {tuple(value.shape)}")
        self.heads.load_state_dict({k[len("heads."):]: v for k, v in tensors.items()}, strict=True)
        self.heads.to(self.device).eval()

    @classmethod
    def from_folders(cls, folders: list, device: str = "cpu") -> SharedEncoderHeads:
        """Several heads folders loaded on one encoder and combined into one scorer (one encoder pass)."""
        first = cls.from_pretrained(folders[0], device=device)
        rest = [cls.from_pretrained(path, device=device, encoder=first.encoder) for path in folders[1:]]
        return cls.combine([first, *rest]) if rest else first

    @classmethod
    def combine(cls, parts: list[SharedEncoderHeads]) -> SharedEncoderHeads:
        """Several heads folders as one scorer with one encoder pass; they must share encoder and input."""
        if not parts:
            raise PreforchError("combine: no heads given")
        first = parts[0].config
        for other in parts[1:]:
            same_encoder = other.encoder is parts[0].encoder  # loaded on one encoder: its fingerprint was checked
            if (other.config.shared_key()[1:] if same_encoder else other.config.shared_key()) != (
                    first.shared_key()[1:] if same_encoder else first.shared_key()):
                raise PreforchError(f"combine: heads {other.objectives} use encoder/input {other.config.shared_key()}, "
                                    f"but {parts[0].objectives} use {first.shared_key()}; they cannot share one pass")
        config = HeadsConfig(heads=[h for p in parts for h in p.config.heads], encoder=first.encoder,
                             encoder_fingerprint=first.encoder_fingerprint, input_format=first.input_format,
                             max_length=first.max_length, prompt_tokens=first.prompt_tokens,
                             encoder_lora=first.encoder_lora, lora_fingerprint=first.lora_fingerprint)
        heads = nn.ModuleDict({name: p.heads[name] for p in parts for name in p.objectives})
        model = cls(config, encoder=parts[0].encoder, heads=heads)
        model.lora_tensors = parts[0].lora_tensors
        return model


_SAVED_ONLY = ("format_version", "objectives", "library_versions")  # config.json keys that are not settings


def read_heads_folder(path: str | Path) -> tuple[HeadsConfig, dict[str, torch.Tensor]]:
    """Parse and check a heads folder; every problem is a one-line PreforchError naming the file."""
    folder = Path(path)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not folder.is_dir():
        raise PreforchError(f"{folder}: heads folder not found")
    if not cfg_path.is_file():
        raise PreforchError(f"{cfg_path}: missing (a heads folder holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    if not w_path.is_file():
        raise PreforchError(f"{w_path}: missing (a heads folder holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    data = read_object(cfg_path, "heads config")
    require_format(data, cfg_path, HEADS_FORMAT)
    config = _heads_config(data, cfg_path)
    config_objectives = [h.objective for h in config.heads]
    if data.get("objectives", config_objectives) != config_objectives:
        raise PreforchError(f"{cfg_path}: objectives {data.get('objectives')!r:.80} disagree with heads "
                            f"{config_objectives}")
    return config, read_safetensors(w_path)


def _read_lora(config: HeadsConfig, folder: Path) -> dict[str, torch.Tensor] | None:
    """The LoRA tensors a heads folder's config announces (checked against its fingerprint), or None."""
    if config.encoder_lora is None:
        return None
    path = folder / LORA_NAME
    if not path.is_file():
        raise PreforchError(f"{path}: missing (config.json names encoder LoRA weights)")
    tensors = read_safetensors(path)
    if lora_fingerprint(tensors) != config.lora_fingerprint:
        raise PreforchError(f"{path}: LoRA weights have fingerprint {lora_fingerprint(tensors)}, config.json says "
                            f"{config.lora_fingerprint!r}")
    return tensors


def _heads_config(data: dict, cfg_path: Path) -> HeadsConfig:
    """config.json's settings as a HeadsConfig: every field present and of its type, errors naming the file."""
    needed = ("heads", "encoder", "encoder_fingerprint", "input_format", "max_length", "prompt_tokens")
    require_keys(data, needed, cfg_path, "setting(s)")
    heads = data["heads"]
    if not isinstance(heads, list):
        raise PreforchError(f"{cfg_path}: 'heads' must be a list of head objects, got {type(heads).__name__}")
    specs = []
    for i, head in enumerate(heads, 1):
        where = f"{cfg_path}: head {i}"
        if not isinstance(head, dict) or "objective" not in head:
            raise PreforchError(f"{where}: expected an object with an 'objective', got {head!r:.60}")
        try:
            specs.append(HeadSpec(**strict_settings(head, HeadSpec, where)))
        except PreforchError as err:
            raise PreforchError(str(err) if str(err).startswith(str(cfg_path)) else f"{cfg_path}: {err}") from None
    values = strict_settings({k: v for k, v in data.items() if k not in ("heads", "encoder_lora")}, HeadsConfig,
                             str(cfg_path), skip=("heads", "encoder_lora", *_SAVED_ONLY))
    if data.get("encoder_lora") is not None:
        if not isinstance(data["encoder_lora"], dict):
            raise PreforchError(f"{cfg_path}: 'encoder_lora' must be an object or null")
        try:
            values["encoder_lora"] = LoraSpec(**strict_settings(data["encoder_lora"], LoraSpec,
                                                                f"{cfg_path}: encoder_lora"))
        except PreforchError as err:
            raise PreforchError(str(err) if str(err).startswith(str(cfg_path)) else f"{cfg_path}: {err}") from None
    try:
        return HeadsConfig(heads=specs, **values)
    except PreforchError as err:
        raise PreforchError(f"{cfg_path}: {err}") from None


def _check_tensors(config: HeadsConfig, tensors: dict[str, torch.Tensor], dim: int, source: str) -> None:
    """The saved tensors against the heads the config describes (built on the meta device, so a config that asks
    for a huge head allocates nothing): the same keys and shapes, floating point and finite."""
    with torch.device("meta"):
        expected = {f"heads.{k}": v for k, v in
                    nn.ModuleDict({h.objective: RewardHead(h, dim) for h in config.heads}).state_dict().items()}
    check_tensors(tensors, expected, source)


def _refuse_custom_code(folder: Path) -> None:
    """Reward heads read standard encoders only: an encoder folder that asks to run its own code (``auto_map``)
    is refused before transformers sees it (a heads folder's config may point anywhere)."""
    for name in ("config.json", "tokenizer_config.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("auto_map"):
            raise PreforchError(f"{folder}: the heads' encoder asks to run its own custom code ({name} has auto_map); "
                                "reward heads only load standard encoders and never run custom code")


def _check_lengths(prompts: list[str], responses: list[str]) -> None:
    if len(prompts) != len(responses):
        raise PreforchError(f"score: {len(prompts)} prompts but {len(responses)} responses")
