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

HEADS_FORMAT = 1
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
    features: list[str] = field(default_factory=lambda: ["response"])
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



@dataclass
class HeadsConfig:
    """What a heads folder's config.json holds (besides the format and library versions)."""

    heads: list[HeadSpec]
    encoder: str = "embedded:minilm"
    encoder_fingerprint: str = ""
    input_format: InputFormat = "prompt_response"
    max_length: int = 256
    prompt_tokens: int = 64

    def __post_init__(self) -> None:
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
        return (self.encoder_fingerprint, self.input_format, self.max_length, self.prompt_tokens)


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
                                          "(ties dropped), embedded:helpful (hh-helpful + ultrafeedback)")
    objective: str = setting("harmless", help="objective name of the trained head")
    output_dir: str = setting("runs/rm", help="folder written: config.json, model.safetensors, MODEL_CARD.md, metrics.json")
    overwrite: bool = setting(False, help="replace an existing output folder")
    encoder: str = setting("embedded:minilm", help="sentence encoder folder, or embedded:minilm")
    input_format: InputFormat = setting("prompt_response", help="encoder input: [CLS] prompt-tail [SEP] response-head "
                                                              "[SEP], or the response alone")
    max_length: int = setting(256, help="encoder tokens per (prompt, response)")
    prompt_tokens: int = setting(64, help="tokens the prompt's end keeps at least (more when the response is short)")
    pooling: Pooling = setting("response_mean", help="how the head pools the token states")
    features: list[str] = setting(["response"], help="pooled features: response, prompt, product, difference, length (log response tokens)")
    hidden: int = setting(0, help="MLP hidden width; 0 means a linear head")
    dropout: float = setting(0.0, help="dropout in the head")
    finetune_encoder: bool = setting(False, help="also train the encoder (slow; no embedding cache)")
    encoder_lr: float = setting(2e-5, help="encoder learning rate when finetune_encoder")
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
    device: str = setting("cpu", help="torch device")
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

    def needs_margins(self) -> bool:
        """Whether training reads each pair's rating margin."""
        return (self.margin_weighting != "none" or self.min_margin > 0 or "margin_weighting" in self.cv_grid
                or "min_margin" in self.cv_grid)
