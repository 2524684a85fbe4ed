"""What a reward-heads folder holds besides its weights: the heads' settings (config.json) and the prompts they
were trained on (training_prompts.json), and the settings of training one head. Plain dataclasses, no torch:
configs and readers import this cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from preforch.artifacts import read_object, require_keys
from preforch.config import field as setting
from preforch.data.rows import RowReading
from preforch.errors import PreforchError
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES, resolve_device

HEADS_FORMAT = 1
#: File in a heads folder holding LoRA weights of the encoder, merged into it at load (HeadsConfig.encoder_lora).
LORA_NAME = "encoder_lora.safetensors"
LOCAL_ENCODER = "encoder"  # config value (and subfolder) for an encoder fine-tuned with the heads
#: File in a heads folder listing fingerprints of every prompt the head was trained or early-stopped on.
TRAINING_PROMPTS_NAME = "training_prompts.json"
InputFormat = Literal["prompt_response", "response"]
Pooling = Literal["mean", "response_mean", "response_attention"]
Feature = Literal["response", "prompt", "product", "difference", "length"]


MAX_HEAD_HIDDEN = 8_192


@dataclass
class HeadSpec:
    """One head: how it pools the shared token states and how big it is."""

    objective: str
    pooling: Pooling = "response_mean"
    features: list[Feature] = field(default_factory=lambda: ["response"])
    hidden: int = 0  # 0: a linear head; > 0: Linear → GELU → Dropout → Linear
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.pooling not in get_args(Pooling):
            raise PreforchError(f"head {self.objective!r}: pooling {self.pooling!r}, expected one of {get_args(Pooling)}")
        bad = [f for f in self.features if f not in get_args(Feature)]
        if bad or not self.features or len(set(self.features)) != len(self.features):
            raise PreforchError(f"head {self.objective!r}: features {self.features}, expected a non-empty subset of "
                                f"{list(get_args(Feature))}")
        # the bound turns `--hidden 1e8` (a 100M-wide layer: out of memory) into one line (issue 25)
        if not 0 <= self.hidden <= MAX_HEAD_HIDDEN or not 0.0 <= self.dropout < 1.0:
            raise PreforchError(f"head {self.objective!r}: hidden {self.hidden} / dropout {self.dropout}: expected "
                                f"hidden in 0..{MAX_HEAD_HIDDEN} and dropout in [0, 1)")



LoraTarget = Literal["query", "key", "value", "dense"]  # BERT's attention projections and feed-forward layers
LORA_TARGETS = get_args(LoraTarget)


@dataclass
class LoraSpec:
    """LoRA on the encoder's top ``layers`` layers: W ← W + (alpha / rank)·B·A on each ``targets`` linear map.
    Stored with the heads (``encoder_lora.safetensors``) and merged into the encoder's weights at load, so scoring
    with it costs what scoring with the plain encoder costs."""

    rank: int = 8
    alpha: float = 16.0
    layers: int = 2
    targets: list[LoraTarget] = field(default_factory=lambda: list(LORA_TARGETS))

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 256 or not self.alpha > 0 or not 1 <= self.layers <= 64:
            raise PreforchError(f"encoder LoRA: rank {self.rank} must be in [1, 256], alpha {self.alpha} > 0, layers "
                                f"{self.layers} in [1, 64]")
        bad = [t for t in self.targets if t not in LORA_TARGETS]
        if bad or not self.targets:
            raise PreforchError(f"encoder LoRA: targets {self.targets}, expected a non-empty subset of {list(LORA_TARGETS)}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass
class HeadsConfig:
    """What a heads folder's config.json holds (besides the format and library versions)."""

    heads: list[HeadSpec]
    encoder: str = "embedded:minilm"
    encoder_fingerprint: str = ""
    input_format: InputFormat = "prompt_response"
    max_length: int = 256
    prompt_tokens: int = 64
    encoder_lora: LoraSpec | None = None  # LoRA weights in encoder_lora.safetensors, merged into the encoder at load
    lora_fingerprint: str = ""  # sha256[:16] of those weights: heads share a pass only with the same LoRA

    def __post_init__(self) -> None:
        if isinstance(self.encoder_lora, dict):
            self.encoder_lora = LoraSpec(**self.encoder_lora)
        names = [h.objective for h in self.heads]
        if not names or len(set(names)) != len(names):
            raise PreforchError(f"heads: objectives must be non-empty and unique, got {names}")
        if self.input_format not in get_args(InputFormat):
            raise PreforchError(f"heads: input_format {self.input_format!r}, expected one of {get_args(InputFormat)}")
        if self.input_format == "response" and any(f in ("prompt", "product", "difference")
                                                   for h in self.heads for f in h.features):
            raise PreforchError("heads: input_format 'response' has no prompt, so only the 'response' and 'length' "
                                "features work")
        if not 8 <= self.max_length <= 512 or not 0 <= self.prompt_tokens < self.max_length - 3:
            raise PreforchError(f"heads: max_length {self.max_length} must be in [8, 512] and prompt_tokens "
                                f"{self.prompt_tokens} below max_length - 3")

    def shared_key(self) -> tuple:
        """Heads can share one pass only when these agree."""
        return (self.encoder_fingerprint, self.lora_fingerprint, self.input_format, self.max_length,
                self.prompt_tokens)


def read_training_prompts(folder: str | Path) -> set[str]:
    """Fingerprints of the prompts a heads folder's head was trained or early-stopped on."""
    path = Path(folder) / TRAINING_PROMPTS_NAME
    if not path.is_file():
        raise PreforchError(f"{path}: not found; the head's training prompts are unknown (retrain it with "
                            "`preforch rm train`, or leave the folder out of reward_model_prompts)")
    prints = read_object(path, "training-prompts file")
    require_keys(prints, ["fingerprints"], path)
    prints = prints["fingerprints"]
    if not isinstance(prints, list) or not all(isinstance(p, str) for p in prints):
        raise PreforchError(f"{path}: 'fingerprints' must be a list of strings")
    return set(prints)


CV_SETTINGS = ("pooling", "features", "hidden", "dropout", "epochs", "patience", "batch_size", "lr",
               "weight_decay", "margin_weighting", "min_margin")  # what cv_grid may vary
MarginWeighting = Literal["none", "margin"]


@dataclass
class RMTrainConfig(RowReading):
    """Settings of `preforch rm train`."""

    data: str = setting("embedded:hh", help="preference data file (needs a rejected column), or an embedded set: "
                                          "embedded:hh (harmless), embedded:hh-helpful, embedded:ultrafeedback "
                                          "(ties dropped), embedded:coconot, embedded:helpful (hh-helpful + "
                                          "ultrafeedback), embedded:helpful-all (+ coconot)")
    objective: str = setting("harmless", help="objective name of the trained head")
    output_dir: str = setting("runs/rm", help="folder written: config.json, model.safetensors, MODEL_CARD.md, metrics.json")
    overwrite: bool = setting(False, help="replace an existing output folder")
    encoder: str = setting("embedded:minilm", help="sentence encoder folder, or embedded:minilm")
    input_format: InputFormat = setting("prompt_response", help="encoder input: [CLS] prompt-tail [SEP] response-head "
                                                              "[SEP], or the response alone")
    max_length: int = setting(256, help="encoder tokens per (prompt, response)")
    prompt_tokens: int = setting(64, help="tokens the prompt's end keeps at least (more when the response is short)")
    pooling: Pooling = setting("response_mean", help="how the head pools the token states")
    features: list[Feature] = setting(["response"], help="pooled features: response, prompt, product, difference, "
                                                       "length (log response tokens)")
    hidden: int = setting(0, help="MLP hidden width; 0 means a linear head")
    dropout: float = setting(0.0, help="dropout in the head")
    finetune_encoder: bool = setting(False, help="also train the whole encoder (slow; no embedding cache; the "
                                                 "folder then holds a full encoder copy)")
    encoder_lr: float = setting(2e-5, help="encoder learning rate when finetune_encoder")
    lora_rank: int = setting(0, help="> 0: train LoRA adapters of this rank (PEFT) on the encoder's top lora_layers "
                                    "layers with the heads; saved as encoder_lora.safetensors and merged into the "
                                    "encoder at load, so scoring costs the same; 0: frozen encoder")
    lora_alpha: float = setting(16.0, help="LoRA scale numerator (scale = lora_alpha / lora_rank)")
    lora_layers: int = setting(2, help="how many top encoder layers get LoRA; the layers below stay frozen and their "
                                      "states are computed once and cached")
    lora_targets: list[LoraTarget] = setting(list(LORA_TARGETS), help="linear maps that get LoRA: query, key, "
                                                                      "value, dense (attention output and "
                                                                      "feed-forward)")
    lora_lr: float = setting(5e-4, help="LoRA learning rate (the heads use lr)")
    lora_dropout: float = setting(0.1, help="dropout on the LoRA input while training")
    heads: dict = setting({}, help="objective: data, for several heads trained together on one (LoRA) encoder, "
                                   "each on its own pairs (e.g. {harmless: embedded:hh, helpful: "
                                   "embedded:helpful-all}); empty: one head, `objective` on `data`. Needs lora_rank > 0")
    epochs: int = setting(40, help="maximum epochs")
    patience: int = setting(6, help="stop after this many epochs without a better validation loss")
    batch_size: int = setting(64, help="pairs per step")
    lr: float = setting(1e-3, help="head learning rate (AdamW)")
    weight_decay: float = setting(0.01, help="AdamW weight decay")
    heldout_fraction: float = setting(0.2, help="share of PROMPTS held out for the final accuracy (the same prompts "
                                              "the adapter's test split holds out with test_fraction 0.2, seed 0)")
    val_fraction: float = setting(0.15, help="share of prompts used for early stopping (not trained on)")
    seed: int = setting(0, help="seed for the split, initialisation and shuffling")
    limit: int | None = setting(None, help="use only the first N pairs (tests, quick runs)")
    bootstrap: int = setting(1000, help="bootstrap resamples (over held-out prompts) for the 95% interval")
    encode_batch_size: int = setting(32, help="rows per encoder pass")
    device: str = setting(DEFAULT_DEVICE, help=f"torch device of the encoder and the heads: {DEVICE_CHOICES}")
    progress: bool = setting(True, help="show progress bars")
    references: dict = setting({}, help="reference accuracies measured elsewhere (name: accuracy), shown in the card")
    margin_weighting: MarginWeighting = setting("none", help="'margin': weight each training pair's loss by its "
                                                           "rating margin (divided by the mean margin)")
    min_margin: float = setting(0.0, help="train only on pairs whose rating margin is at least this (0: all)")
    cv_folds: int = setting(0, help="k >= 2: pick the cv_grid candidate with the lowest mean k-fold (by prompt) "
                                  "Bradley-Terry loss over train + validation pairs (never the held-out ones)")
    cv_grid: dict = setting({}, help="setting: [values] tried by cv_folds (all combinations); settings: "
                                   + ", ".join(CV_SETTINGS))

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device, "rm train: device")  # the metrics record the device that trained
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
        if self.cv_folds and (self.finetune_encoder or self.lora_rank):
            raise PreforchError("rm train: cv_folds needs the frozen encoder (finetune_encoder: false, lora_rank: 0)")
        if self.lora_rank < 0 or (self.lora_rank and self.finetune_encoder):
            raise PreforchError(f"rm train: lora_rank {self.lora_rank} must be >= 0, and LoRA and finetune_encoder "
                                "exclude each other")
        if self.heads and (not self.lora_rank or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                         for k, v in self.heads.items())):
            raise PreforchError(f"rm train: heads must map objective names to data settings and needs lora_rank > 0, "
                                f"got {self.heads!r:.120}")
        if self.lora_rank and not 0.0 <= self.lora_dropout < 1.0:
            raise PreforchError(f"rm train: lora_dropout {self.lora_dropout} must be in [0, 1)")
        self.lora_spec()  # validates the LoRA settings
        self.head_spec()  # validates pooling/features/hidden/dropout

    def head_spec(self) -> HeadSpec:
        return HeadSpec(objective=self.objective, pooling=self.pooling, features=list(self.features),
                        hidden=self.hidden, dropout=self.dropout)

    def lora_spec(self) -> LoraSpec | None:
        if not self.lora_rank:
            return None
        return LoraSpec(rank=self.lora_rank, alpha=self.lora_alpha, layers=self.lora_layers,
                        targets=list(self.lora_targets))

    def head_data(self) -> dict[str, str]:
        """objective → data setting of every head this run trains."""
        return dict(self.heads) if self.heads else {self.objective: self.data}

    def needs_margins(self) -> bool:
        """Whether training reads each pair's rating margin."""
        return (self.margin_weighting != "none" or self.min_margin > 0 or "margin_weighting" in self.cv_grid
                or "min_margin" in self.cv_grid)
