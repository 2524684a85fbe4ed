"""How sure the adapter is of w(x), from the one encoder pass it already makes (issue 22).

Two signals, each a ratio to its median on the validation prompts (1 = as unusual as a typical held-out prompt):

- ``distance``: mean cosine distance of the prompt's embedding to its ``knn`` nearest centroids of the training
  embeddings (spherical k-means; a few hundred unit vectors saved with the adapter). Prompts unlike any training
  prompt are far from every centroid. A sentence encoder's embeddings are compared as they are (they are made for
  cosine similarity: leave-one-kind-out AUC 0.66 / 0.68 / 0.92 against 0.67 / 0.61 / 0.88 standardised,
  BENCHMARKS.md); a causal LM's hidden states are standardised first (a few huge dimensions would dominate).
- ``disagreement``: a small deep ensemble: the main MLP plus ``heads`` MLPs trained on bootstrap resamples of
  the training rows with other seeds; mean KL(w_m ‖ w̄) of the members to their mean. It costs a few
  matrix products on the same embedding.

The score u(x) (``signal``: one of them, or the larger of the two) becomes the fallback share λ(x) through a ramp
fitted on the validation rows: λ = 0 up to the validation quantile ``fallback_quantile`` of u (most held-out
prompts keep the adapter's own weights), rising linearly to 1 at the most unusual validation prompt (a prompt
less familiar than every held-out one gets the default weights). Confidence is 1 − λ. Measured on the embedded
data, the distance separates a left-out kind far better than the ensemble's disagreement, which is why
``distance`` is the default signal and the ensemble is off by default (BENCHMARKS.md).

Saved as ``uncertainty.safetensors`` (heads, centroids, training-mean weights) and ``uncertainty.json``
(format version, settings, validation scales and the ramp). An adapter folder without them still loads and
reports no uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from preforch.adapter.mlp import AdapterMLP
from preforch.artifacts import check_tensors, read_object, read_safetensors, require_format, write_safetensors
from preforch.atomic import write_json
from preforch.errors import PreforchError

UNCERTAINTY_WEIGHTS = "uncertainty.safetensors"
UNCERTAINTY_CONFIG = "uncertainty.json"
UNCERTAINTY_FORMAT = 1
SIGNALS = ("distance", "disagreement", "max")


@dataclass
class Uncertainty:
    """The saved uncertainty of one adapter. Shapes: centroids [C, D] (unit rows), train_mean [K]."""

    heads: list[AdapterMLP]
    centroids: torch.Tensor  # [C, D]
    train_mean: torch.Tensor  # [K], mean w(x) over the training prompts: the default fallback weights
    standardise: bool  # compare standardised embeddings (causal LM hidden states), else the encoder's own
    knn: int
    signal: str
    scale: dict[str, float]  # component → its median on the validation prompts
    ramp: tuple[float, float]  # u where λ leaves 0 and where it reaches 1
    n_val: int

    @torch.no_grad()
    def components(self, mlp: AdapterMLP, embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each signal as a ratio to its validation median. Shape: [N, D] → component → [N]."""
        x = embeddings.float()
        unit = _unit(mlp, x, self.standardise)  # [N, D]
        cos = unit @ self.centroids.T  # [N, C]
        near = (1.0 - cos).topk(min(self.knn, cos.shape[1]), dim=1, largest=False).values.mean(1)  # [N]
        logw = torch.stack([torch.log_softmax(m(x), -1) for m in (mlp, *self.heads)])  # [M, N, K]
        mean = logw.exp().mean(0).clamp_min(1e-12)  # [N, K]
        spread = (logw.exp() * (logw - mean.log())).sum(-1).mean(0)  # [N] mean KL(w_m ‖ w̄)
        return {"distance": near / self.scale["distance"], "disagreement": spread / self.scale["disagreement"]}

    def score(self, mlp: AdapterMLP, embeddings: torch.Tensor) -> torch.Tensor:
        """The combined uncertainty u(x). Shape: [N, D] → [N]."""
        parts = self.components(mlp, embeddings)
        if self.signal == "max":
            return torch.maximum(parts["distance"], parts["disagreement"])
        return parts[self.signal]

    def fallback_share(self, u: torch.Tensor) -> torch.Tensor:
        """λ(u): 0 below the ramp, 1 above it, linear between. Shape: [N] → [N]."""
        lo, hi = self.ramp
        return ((u - lo) / max(hi - lo, 1e-9)).clamp(0.0, 1.0)

    def save(self, folder: Path) -> None:
        tensors = {"centroids": self.centroids, "train_mean": self.train_mean}
        for i, head in enumerate(self.heads):
            tensors.update({f"head.{i}.{k}": v for k, v in head.state_dict().items()})
        write_safetensors(folder / UNCERTAINTY_WEIGHTS, tensors, {"format": "pt"})
        write_json(folder / UNCERTAINTY_CONFIG, {
            "format_version": UNCERTAINTY_FORMAT, "heads": len(self.heads), "knn": self.knn, "signal": self.signal,
            "standardise": self.standardise,
            "scale": self.scale, "ramp": list(self.ramp), "n_val": self.n_val,
            "centroids": int(self.centroids.shape[0])})

    @classmethod
    def load(cls, folder: Path, mlp: AdapterMLP, dim: int, k: int, hidden: int, layers: int, dropout: float,
             activation: str) -> Uncertainty | None:
        """The folder's uncertainty, or None for an adapter saved without one. Checked like the weights."""
        meta_path, weights_path = folder / UNCERTAINTY_CONFIG, folder / UNCERTAINTY_WEIGHTS
        if not meta_path.is_file() and not weights_path.is_file():
            return None
        for needed in (meta_path, weights_path):
            if not needed.is_file():
                raise PreforchError(f"{needed}: missing from the adapter folder (its uncertainty is half there)")
        meta = read_object(meta_path, "uncertainty config")
        require_format(meta, meta_path, UNCERTAINTY_FORMAT, "unknown format_version")
        heads, knn, c = meta.get("heads"), meta.get("knn"), meta.get("centroids")
        scale, ramp = meta.get("scale"), meta.get("ramp")
        ints_ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (heads, knn, c))
        if (not ints_ok or not 0 <= heads <= 64 or not 1 <= knn or not 1 <= c <= 65536
                or meta.get("signal") not in SIGNALS or not isinstance(scale, dict)
                or set(scale) != {"distance", "disagreement"}
                or not all(isinstance(v, (int, float)) and v > 0 for v in scale.values())
                or not isinstance(meta.get("standardise"), bool) or not isinstance(ramp, list) or len(ramp) != 2
                or not all(isinstance(v, (int, float)) for v in ramp) or not ramp[0] < ramp[1]):
            raise PreforchError(f"{meta_path}: not a valid uncertainty config (heads, knn, centroids, signal, scale, "
                                f"ramp)")
        with torch.device("meta"):
            one = AdapterMLP(dim, k, hidden, layers, dropout, activation).state_dict()
        expected = {"centroids": torch.empty(c, dim, device="meta"), "train_mean": torch.empty(k, device="meta")}
        expected.update({f"head.{i}.{n}": v for i in range(heads) for n, v in one.items()})
        state = read_safetensors(weights_path, "cannot read the uncertainty weights")
        check_tensors(state, expected, weights_path, UNCERTAINTY_CONFIG)
        members = []
        for i in range(heads):
            head = AdapterMLP(dim, k, hidden, layers, dropout, activation)
            head.load_state_dict({n: state[f"head.{i}.{n}"] for n in one}, strict=True)
            members.append(head.to(mlp.input_mean.device).eval())
        return cls(members, state["centroids"].to(mlp.input_mean.device), state["train_mean"], meta["standardise"],
                   knn, meta["signal"],
                   {k_: float(v) for k_, v in scale.items()}, (float(ramp[0]), float(ramp[1])), int(meta.get("n_val", 0)))


def _unit(mlp: AdapterMLP, embeddings: torch.Tensor, standardise: bool) -> torch.Tensor:
    """Embeddings on the unit sphere, standardised first (the MLP's own input statistics) when asked.
    Shape: [N, D] → [N, D]."""
    z = (embeddings - mlp.input_mean) / mlp.input_std if standardise else embeddings
    return torch.nn.functional.normalize(z, dim=-1)


def kmeans_centroids(unit: torch.Tensor, count: int, seed: int = 0, iterations: int = 25) -> torch.Tensor:
    """Spherical k-means: ``count`` unit centroids of unit rows (all rows when there are no more than
    ``count``). Shape: [N, D] → [C, D]."""
    if len(unit) <= count:
        return unit.clone()
    gen = torch.Generator().manual_seed(seed)
    cent = unit[torch.randperm(len(unit), generator=gen)[:count]].clone()  # [C, D]
    for _ in range(iterations):
        assign = (unit @ cent.T).argmax(1)  # [N]
        sums = torch.zeros_like(cent).index_add_(0, assign, unit)  # [C, D]
        filled = torch.bincount(assign, minlength=count) > 0
        cent[filled] = torch.nn.functional.normalize(sums[filled], dim=-1)
    return cent


def fit_uncertainty(mlp: AdapterMLP, config, fit_head, train_emb: torch.Tensor, rows: torch.Tensor,
                    val_emb: torch.Tensor) -> Uncertainty:
    """Train the ensemble heads, cluster the training embeddings and fit the ramp on the validation prompts.

    ``fit_head(head, train_emb, rows, seed)`` trains one head in place (the adapter's own loss and early
    stopping); heads see a bootstrap resample of the training rows. Shapes: train_emb [M, D], rows [M],
    val_emb [V, D].
    """
    gen = torch.Generator().manual_seed(config.seed + 1)
    heads = []
    for i in range(config.uncertainty_heads):
        torch.manual_seed(config.seed + 1000 + i)
        head = AdapterMLP(mlp.input_mean.numel(), mlp.net[-1].out_features, config.hidden, config.layers,
                          config.dropout, config.activation).to(train_emb.device)
        head.input_mean.copy_(mlp.input_mean)
        head.input_std.copy_(mlp.input_std)
        pick = torch.randint(len(rows), (len(rows),), generator=gen)  # [M] bootstrap of the training rows
        fit_head(head, train_emb[pick], rows[pick], config.seed + 1000 + i)
        heads.append(head.eval())
    with torch.no_grad():
        standardise = config.encoder != "sentence"
        centroids = kmeans_centroids(_unit(mlp, train_emb, standardise), config.uncertainty_centroids, config.seed)
        train_mean = torch.softmax(mlp(train_emb), -1).mean(0)  # [K]
        model = Uncertainty(heads, centroids, train_mean.cpu(), standardise, config.uncertainty_knn,
                            config.uncertainty_signal,
                            {"distance": 1.0, "disagreement": 1.0}, (0.0, 1.0), len(val_emb))
        raw = model.components(mlp, val_emb)
        model.scale = {name: max(float(v.median()), 1e-9) for name, v in raw.items()}
        u = model.score(mlp, val_emb)  # [V]
        lo, hi = float(torch.quantile(u, config.fallback_quantile)), float(u.max())
        model.ramp = (lo, hi if hi > lo else lo + 1e-6)
    return model
