"""The adapter's settings. Every choice the paper leaves open is here, with its default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from preforch.adapter.views import TRUNCATION_SIDE, PromptView
from preforch.config import field
from preforch.errors import PreforchError
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES, resolve_device
from preforch.rewards.normalize import NormMethod
from preforch.types import EncoderKind

#: Upper bounds that keep a typo (`--hidden 1e8`) from becoming an out-of-memory crash: far above any useful
#: adapter (the defaults are 256 wide, 2 layers) and any encoder's context.
MAX_HIDDEN = 8_192
MAX_LAYERS = 64
MAX_TOKENS = 1_048_576
BOUNDS = {"hidden": f"1..{MAX_HIDDEN}", "layers": f"1..{MAX_LAYERS}",
          "encoder_max_length": f"null or 1..{MAX_TOKENS} tokens"}

LossKind = Literal["auto", "forward_kl", "reverse_kl", "pairwise", "mix"]
Activation = Literal["gelu", "relu", "tanh"]
UncertaintySignal = Literal["distance", "disagreement", "max"]


@dataclass
class AdapterConfig:
    """PRO preference adapter: frozen prompt encoder → MLP → softmax over K objectives."""

    encoder: EncoderKind = field("sentence", help="prompt encoder: 'sentence' (mean-pooled sentence encoder) or "
                                 "'causal_lm' (hidden state of the last prompt token of a causal LM, e.g. the policy)")
    encoder_path: str | None = field(None, help="encoder folder; null = embedded default (MiniLM for 'sentence', "
                                     "SmolLM2 for 'causal_lm')")
    encoder_max_length: int | None = field(None, help="max prompt tokens for the encoder; null = 256 (sentence) "
                                           "or 512 (causal_lm)")
    encoder_layer: int = field(-1, help="causal_lm only: which hidden layer to read (-1 = last)")
    prompt_view: PromptView = field("last_user", help="what of a conversation the encoder reads, saved with the "
                                    "adapter and used everywhere it runs: 'last_user' (the final user turn alone) or "
                                    "'context' (the whole conversation, truncated from the start so the final user "
                                    "turn survives)")
    train_views: list[PromptView] = field([], help="extra views of each training conversation added as training "
                                          "rows (e.g. [context] next to prompt_view last_user); validation and test "
                                          "use prompt_view only; [] = prompt_view alone")
    trust_remote_code: bool = field(False, help="allow custom model code from the encoder folder")
    hidden: int = field(256, help=f"MLP hidden width (at most {MAX_HIDDEN})")
    layers: int = field(2, help="number of linear layers in the MLP (1 = a linear softmax gate)")
    dropout: float = field(0.1, help="dropout between MLP layers")
    activation: Activation = field("gelu", help="MLP activation")
    norm_method: NormMethod = field("zscore", help="per-objective score normalisation fitted on the training split")
    norm_clip: float | None = field(5.0, help="clip normalised scores to [-clip, clip]; null = no clipping")
    tau: float = field(1.0, help="temperature of the targets w* = softmax(s~(x, y+) / tau)")
    loss: LossKind = field("auto", help="auto = pairwise when the data has rejected responses, else forward_kl "
                           "(the saved adapter records which; chosen on validation rows in BENCHMARKS.md 'Prompt "
                           "views'); pairwise = Bradley-Terry on w(x)·(s~+ − s~−); forward_kl = KL(w*||w(x)) (the "
                           "paper's, from preferred responses alone); reverse_kl = KL(w(x)||w*); mix")
    mix_weight: float = field(0.5, help="mix only: loss = (1−m)·forward_kl + m·pairwise")
    pairwise_beta: float = field(1.0, help="scale of the Bradley-Terry logit beta·w(x)·(s~+ − s~−)")
    lr: float = field(1e-3, help="AdamW learning rate")
    weight_decay: float = field(0.01, help="AdamW weight decay")
    batch_size: int = field(64, help="training batch size (prompts)")
    epochs: int = field(100, help="maximum epochs")
    patience: int = field(8, help="early stopping: epochs without validation-loss improvement")
    val_fraction: float = field(0.15, help="share of distinct prompts held out for validation (early stopping)")
    test_fraction: float = field(0.2, help="share of distinct prompts held out for the test split (0.2 = the "
                                 "built-in reward heads' held-out split for the same seed): never used "
                                 "for training, early stopping or any choice; `preforch evaluate adapter` tests on "
                                 "it (0 = no test split)")
    seed: int = field(0, help="seed for the split, initialisation and batching")
    device: str = field(DEFAULT_DEVICE, help=f"torch device for the encoder and the MLP: {DEVICE_CHOICES}")
    embed_batch_size: int = field(64, help="prompts per encoder batch")
    cache_embeddings: bool = field(True, help="cache prompt embeddings on disk (keyed by encoder and texts)")
    uncertainty: bool = field(True, help="fit and save the adapter's uncertainty (an ensemble of heads and the "
                              "training embeddings' centroids) so every route can report confidence and fall back "
                              "to default weights on unfamiliar prompts (BENCHMARKS.md 'Knowing when it does not "
                              "know')")
    uncertainty_heads: int = field(0, help="ensemble heads trained besides the main MLP (bootstrap rows, other "
                                   "seeds) for the disagreement signal; 0 = none (on the embedded data their "
                                   "disagreement did not mark unfamiliar prompts, BENCHMARKS.md)")
    uncertainty_centroids: int = field(256, help="k-means centroids of the training embeddings kept for the "
                                       "distance signal")
    uncertainty_knn: int = field(10, help="distance signal: mean cosine distance to this many nearest centroids")
    uncertainty_signal: UncertaintySignal = field("distance", help="what the fallback reads: 'distance' to the "
                                                  "training prompts, ensemble 'disagreement', or the larger ('max'), "
                                                  "each as a ratio to its median on validation prompts")
    fallback_quantile: float = field(0.9, help="validation quantile of the uncertainty where the fallback share "
                                     "starts to rise from 0; it reaches 1 at the least familiar validation prompt")

    def __post_init__(self) -> None:
        checks = {
            "encoder": self.encoder in get_args(EncoderKind),
            # a negative length passed here and failed in the tokenizer, after training (issue 25)
            "encoder_max_length": self.encoder_max_length is None or 1 <= self.encoder_max_length <= MAX_TOKENS,
            "loss": self.loss in get_args(LossKind),
            "activation": self.activation in get_args(Activation),
            "hidden": 1 <= self.hidden <= MAX_HIDDEN,  # `--hidden 1e8` asked for a 100M-wide layer: out of memory
            "layers": 1 <= self.layers <= MAX_LAYERS,
            "dropout": 0.0 <= self.dropout < 1.0,
            "norm_clip": self.norm_clip is None or 0 < self.norm_clip < float("inf"),
            "tau": 0 < self.tau < float("inf"),
            "mix_weight": 0.0 <= self.mix_weight <= 1.0,
            "lr": 0 < self.lr <= 1e6,  # AdamW's step overflows float32 near 1e37 (a RuntimeError mid-training)
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 1,
            "val_fraction": 0.0 < self.val_fraction < 1.0,
            "test_fraction": 0.0 <= self.test_fraction < 1.0 and self.val_fraction + self.test_fraction < 1.0,
            "prompt_view": self.prompt_view in TRUNCATION_SIDE,
            "train_views": all(v in TRUNCATION_SIDE for v in self.train_views),
            "uncertainty_heads": 0 <= self.uncertainty_heads <= 64,
            "uncertainty_centroids": 1 <= self.uncertainty_centroids <= 65536,
            "uncertainty_knn": 1 <= self.uncertainty_knn <= self.uncertainty_centroids,
            "uncertainty_signal": self.uncertainty_signal in get_args(UncertaintySignal)
            and not (self.uncertainty_signal == "disagreement" and self.uncertainty_heads == 0),
            "fallback_quantile": 0.0 < self.fallback_quantile < 1.0,
        }
        bad = [f"{name}={getattr(self, name)!r}" + (f" (expected {BOUNDS[name]})" if name in BOUNDS else "")
               for name, ok in checks.items() if not ok]
        if bad:
            raise PreforchError(f"adapter config: invalid value for {', '.join(bad)}")

        self.device = resolve_device(self.device, "adapter config: device")  # the MLP and its tensors use it as is

    def resolved_loss(self, has_rejected: bool) -> str:
        """The loss that trains: ``auto`` becomes pairwise with rejected responses, else forward_kl."""
        if self.loss == "auto":
            return "pairwise" if has_rejected else "forward_kl"
        return self.loss

    @property
    def truncation_side(self) -> str:
        """Which end of a long encoder input the prompt view keeps (see :mod:`preforch.adapter.views`)."""
        return TRUNCATION_SIDE[self.prompt_view]
