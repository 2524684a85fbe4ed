"""The preference adapter: frozen prompt encoder → MLP → softmax over K objectives, and its artifact folder."""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
from pathlib import Path

import numpy as np
import torch

from preforch.adapter.config import AdapterConfig
from preforch.adapter.mlp import AdapterMLP
from preforch.adapter.views import view_inputs
from preforch.artifacts import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_tensors,
    artifact_relative,
    read_object,
    read_safetensors,
    require_format,
    require_keys,
    strict_settings,
    write_safetensors,
)
from preforch.atomic import staged_dir, write_json
from preforch.conversation import as_conversations
from preforch.errors import PreforchError, setting_hint
from preforch.models.encoders import load_encoder
from preforch.models.paths import resolve_device
from preforch.rewards.normalize import Normalizer
from preforch.weighting import WeightPrediction, check_objectives

NORMALIZER_NAME = "normalizer.json"
#: 2: prompts are conversations read through a saved prompt view (version-1 adapters read raw data-set text).
FORMAT_VERSION = 2
ARTIFACT_TYPE = "preforch-preference-adapter"


def _versions() -> dict[str, str]:
    out = {}
    for name in ("preforch", "torch", "transformers", "safetensors"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "unknown"
    return out


class PreferenceAdapter:
    """f(x) → w(x) ∈ Δ^{K−1}. The encoder is loaded on first use of :meth:`predict_weights`."""

    def __init__(self, config: AdapterConfig, objectives: list[str], normalizer: Normalizer, dim: int,
                 mlp: AdapterMLP | None = None, encoder=None) -> None:
        if len(objectives) < 2:
            raise PreforchError(f"an adapter needs at least 2 objectives, got {objectives}")
        check_objectives(objectives, normalizer.objectives, "normalizer", "adapter")
        self.config = config
        self.objectives = list(objectives)
        self.normalizer = normalizer
        self.dim = dim
        self.mlp = mlp or AdapterMLP(dim, len(objectives), config.hidden, config.layers, config.dropout,
                                     config.activation)
        self.mlp.to(config.device)
        self._encoder = encoder
        self.uncertainty = None  # an Uncertainty (preforch.adapter.uncertainty), or None: no confidence known

    @property
    def encoder(self):
        if self._encoder is None:
            c = self.config
            self._encoder = load_encoder(c.encoder, c.encoder_path, c.encoder_max_length, c.device,
                                         c.trust_remote_code, c.encoder_layer, c.truncation_side)
            if self._encoder.dim != self.dim:
                raise PreforchError(f"encoder {c.encoder_path or 'embedded'} gives {self._encoder.dim}-dim embeddings, "
                                    f"the adapter was trained on {self.dim}")
        return self._encoder

    @torch.inference_mode()
    def predict_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Weights from precomputed prompt embeddings. Shape: [N, D] → [N, K]."""
        self.mlp.eval()
        logits = self.mlp(embeddings.to(self.config.device, torch.float32))  # [N, K]
        return torch.softmax(logits.float(), dim=-1).cpu()

    def encoder_inputs(self, prompts) -> list[str]:
        """What the encoder reads for each prompt: the saved prompt view of its conversation. Shape: [N] texts.

        ``prompts``: conversations, or anything :func:`~preforch.conversation.as_conversations` parses (plain
        text, HH dialogue text, message lists).
        """
        return view_inputs(as_conversations(prompts), self.config.prompt_view, self.encoder)

    def embed(self, prompts, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Prompt embeddings under the saved view. Shape: [N, D]."""
        return self.encoder.encode(self.encoder_inputs(prompts), batch_size=batch_size, progress=progress)

    @torch.inference_mode()
    def confidence_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor | None:
        """Confidence 1 − λ(x) in [0, 1] from precomputed embeddings (λ: the calibrated fallback share, see
        :mod:`preforch.adapter.uncertainty`); None for an adapter saved without uncertainty. Shape: [N, D] → [N]."""
        if self.uncertainty is None:
            return None
        self.mlp.eval()
        u = self.uncertainty.score(self.mlp, embeddings.to(self.config.device, torch.float32))  # [N]
        return (1.0 - self.uncertainty.fallback_share(u)).cpu()

    def predict_from_embeddings_with_confidence(self, embeddings: torch.Tensor) -> WeightPrediction:
        """w(x) and its confidence from precomputed embeddings (chunked). Shape: [N, D] → [N, K], [N]."""
        weights, conf = [], []
        for i in range(0, len(embeddings), 4096):
            chunk = embeddings[i : i + 4096]
            weights.append(self.predict_from_embeddings(chunk))
            c = self.confidence_from_embeddings(chunk)
            if c is not None:
                conf.append(c)
        w = torch.cat(weights).numpy().astype(np.float64) if weights else np.zeros((0, len(self.objectives)))
        return WeightPrediction(w, None if self.uncertainty is None else
                                (torch.cat(conf).numpy().astype(np.float64) if conf else np.zeros(0)),
                                self.default_weights)

    @property
    def default_weights(self) -> np.ndarray | None:
        """The training-mean w(x): the fallback's default when neither the user nor the config gives one.
        Shape: [K]; None without a saved uncertainty."""
        if self.uncertainty is None:
            return None
        return self.uncertainty.train_mean.numpy().astype(np.float64)

    def predict(self, prompts, batch_size: int = 64, progress: bool = False) -> WeightPrediction:
        """Per-prompt weights [N, K] and their confidence [N] (None without a saved uncertainty), from one
        encoder pass. ``prompts`` as in :meth:`predict_weights`."""
        conversations = as_conversations(prompts)
        if not conversations:
            return WeightPrediction(np.zeros((0, len(self.objectives))),
                                    None if self.uncertainty is None else np.zeros(0), self.default_weights)
        embeddings = self.embed(conversations, batch_size=batch_size, progress=progress)  # [N, D]
        return self.predict_from_embeddings_with_confidence(embeddings)

    def predict_weights(self, prompts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Per-prompt weights over ``objectives``. Shape: [N, K], each row on the simplex.

        ``prompts``: a list of conversations, plain texts, HH dialogue texts or message lists; every shape of
        the same conversation gets the same weights.
        """
        conversations = as_conversations(prompts)
        if not conversations:
            return np.zeros((0, len(self.objectives)))
        embeddings = self.embed(conversations, batch_size=batch_size, progress=progress)  # [N, D]
        out = torch.cat([self.predict_from_embeddings(embeddings[i : i + 4096])
                         for i in range(0, len(conversations), 4096)])
        return out.numpy().astype(np.float64)

    def check_objectives(self, objectives: list[str], what: str = "scores") -> None:
        check_objectives(objectives, self.objectives, "adapter", f"the {what}'")

    def config_dict(self) -> dict:
        return {
            "artifact": ARTIFACT_TYPE,
            "format_version": FORMAT_VERSION,
            "objectives": self.objectives,
            "embedding_dim": self.dim,
            "adapter": dataclasses.asdict(self.config),
            "versions": _versions(),
        }

    def save_pretrained(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write config.json (sorted), model.safetensors and normalizer.json atomically (all or nothing)."""
        with staged_dir(path, overwrite=overwrite) as tmp:
            self.write_files(tmp)
        return Path(path)

    def write_files(self, folder: Path) -> None:
        """Write the artifact's files into an existing (staged) folder."""
        write_safetensors(folder / WEIGHTS_NAME, self.mlp.state_dict(), {"format": "pt", "artifact": ARTIFACT_TYPE})
        write_json(folder / CONFIG_NAME, self.config_dict())
        self.normalizer.save(folder / NORMALIZER_NAME)
        if self.uncertainty is not None:
            self.uncertainty.save(folder)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, encoder=None,
                        trust_remote_code: bool = False) -> PreferenceAdapter:
        """Rebuild from config.json and load the weights strictly. Errors name the file and the problem.

        Every field of the artifact is checked before anything is built (a hostile config.json cannot make
        it allocate a huge model, and NaN or integer weights are refused). ``device``: where to run (default
        cpu; the device the adapter was trained on is not reused). ``trust_remote_code``: only the caller can
        allow custom model code in the encoder folder; an artifact whose config asks for it is refused unless
        the caller allows it.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise PreforchError(f"{folder}: adapter folder not found")
        config_path, weights_path, norm_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME, folder / NORMALIZER_NAME
        for needed in (config_path, weights_path, norm_path):
            if not needed.is_file():
                raise PreforchError(f"{needed}: missing from the adapter folder")
        meta = _read_meta(config_path)
        objectives, dim = meta["objectives"], meta["embedding_dim"]
        config = _adapter_config(meta["adapter"], config_path, trust_remote_code,
                                 resolve_device(device or "cpu", "adapter device"))
        normalizer = Normalizer.load(norm_path)
        check_objectives(objectives, normalizer.objectives, f"{norm_path}:", f"{config_path}'s")
        state = _read_weights(weights_path, config, dim, len(objectives))
        adapter = cls(config, objectives, normalizer, dim, encoder=encoder)
        adapter.mlp.load_state_dict(state, strict=True)
        adapter.mlp.to(config.device).eval()
        from preforch.adapter.uncertainty import Uncertainty  # it builds on AdapterMLP, defined here

        adapter.uncertainty = Uncertainty.load(folder, adapter.mlp, dim, len(objectives), config.hidden,
                                               config.layers, config.dropout, config.activation)
        return adapter


def _read_meta(config_path: Path) -> dict:
    """config.json's top level, checked: artifact type, format, objectives, embedding size, settings object."""
    meta = read_object(config_path, "adapter config")
    if meta.get("artifact") != ARTIFACT_TYPE:
        raise PreforchError(f"{config_path}: not a preforch adapter (artifact {meta.get('artifact')!r:.60})")
    if meta.get("format_version") == 1:
        raise PreforchError(f"{config_path}: a format-1 adapter (it read prompts in their data set's markup); "
                            "retrain it with this preforch (`preforch adapter train`)")
    require_format(meta, config_path, FORMAT_VERSION, "unknown format_version")
    require_keys(meta, ("objectives", "embedding_dim", "adapter"), config_path)
    objectives = meta["objectives"]
    if (not isinstance(objectives, list) or len(objectives) < 2 or len(set(map(str, objectives))) != len(objectives)
            or not all(isinstance(o, str) and o for o in objectives)):
        raise PreforchError(f"{config_path}: 'objectives' must be a list of at least 2 distinct names, got "
                            f"{objectives!r:.80}")
    dim = meta["embedding_dim"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise PreforchError(f"{config_path}: 'embedding_dim' must be a positive integer, got {dim!r:.40}")
    if not isinstance(meta["adapter"], dict):
        raise PreforchError(f"{config_path}: 'adapter' must be an object of settings, got "
                            f"{type(meta['adapter']).__name__}")
    return meta


def _adapter_config(settings: dict, config_path: Path, trust_remote_code: bool, device: str) -> AdapterConfig:
    """The saved settings as an AdapterConfig: every value type-checked; trust and device are the caller's."""
    values = strict_settings(settings, AdapterConfig, config_path, "adapter ")
    if values.get("trust_remote_code") and not trust_remote_code:
        raise PreforchError(f"{config_path}: the adapter asks for trust_remote_code (custom code from its encoder "
                            f"folder {values.get('encoder_path')!r}); an artifact cannot enable code execution: "
                            f"pass {setting_hint('trust_remote_code', 'true')} yourself if you trust that folder")
    values["trust_remote_code"] = bool(trust_remote_code)
    values["device"] = device
    values["encoder_path"] = artifact_relative(values.get("encoder_path"), config_path, "encoder_path")
    try:
        return AdapterConfig(**values)
    except PreforchError as err:
        raise PreforchError(f"{config_path}: {err}") from None


def _read_weights(weights_path: Path, config: AdapterConfig, dim: int, k: int) -> dict[str, torch.Tensor]:
    """model.safetensors checked against the config before any real allocation: the same keys and shapes (an MLP
    built on the meta device), floating-point and finite."""
    state = read_safetensors(weights_path, "cannot read the weights")
    with torch.device("meta"):
        expected = AdapterMLP(dim, k, config.hidden, config.layers, config.dropout, config.activation).state_dict()
    check_tensors(state, expected, weights_path, CONFIG_NAME)
    return state
