"""The settings of every job the command line runs (score, adapter train, evaluate, generate): typed dataclasses
in a light module (no torch, transformers or trl at import), so the command line builds its parser from them
without importing the jobs, and the job modules import what they need at the top. The align, rm and serve
settings live beside their components (:mod:`preforch.align.config`, :mod:`preforch.rewards.head_config`,
:mod:`preforch.serve.config`), light in the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from preforch.adapter.config import AdapterConfig
from preforch.config import field
from preforch.data.rows import RowReading
from preforch.errors import PreforchError
from preforch.infer.floor import FloorSettings
from preforch.models.generation_config import GenerationConfig
from preforch.models.paths import DEFAULT_DEVICE, DEVICE_CHOICES, check_device
from preforch.rewards.scorer import SCORER_TYPE_NAMES
from preforch.types import PolicyDType
from preforch.weighting import WeightingSettings

__all__ = ["STAGES", "EvaluateAdapterConfig", "EvaluateResponsesConfig", "EvaluateRoutingConfig",
           "GenerateJobConfig", "ScoreConfig", "TrainAdapterJob", "output_kind", "recipe_sections"]

EMBEDDED_EXAMPLE = "embedded:example"
#: The sections of a paper recipe file (`preforch evaluate recipe`), in the order they run.
STAGES = ("score", "adapter", "evaluate_adapter")


OUTPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


@dataclass
class ScoreConfig(RowReading):
    """Settings of `preforch score`."""

    input: str = field("", help="preference data file (.jsonl/.json/.parquet/.csv, optionally .gz) or a saved "
                                "datasets folder")
    output: str = field("", help="where to write the scored rows: .jsonl, .jsonl.gz (gzip-compressed) or .parquet")
    scorers: list[dict] = field([{"type": "builtin"}],
                                help="scorer specs, e.g. {type: hf, path: DIR, objective: harmless}, "
                                     "{type: rule, name: concise}, {type: builtin}, {type: heads, path: DIR}")
    batch_size: int = field(64, help="responses per scoring chunk (the cache commits after each chunk)")
    cache: bool = field(True, help="reuse and store scores in the on-disk score cache")
    cache_path: str | None = field(None, help="score cache file (default: $PREFORCH_CACHE/scores.sqlite, "
                                              "~/.cache/preforch/scores.sqlite)")
    device: str = field(DEFAULT_DEVICE, help=f"device of model scorers whose spec sets none: {DEVICE_CHOICES}; "
                                             "auto under torchrun / accelerate launch: this process's accelerator")
    overwrite: bool = field(False, help="replace an existing output file")
    progress: bool = field(True, help="show a progress bar")

    def __post_init__(self) -> None:
        if not self.input:
            raise PreforchError("score: setting 'input' is required (a preference data file)")
        if not self.output:
            raise PreforchError("score: setting 'output' is required (a .jsonl or .parquet file)")
        if output_kind(self.output) not in OUTPUT_SUFFIXES:
            raise PreforchError(f"{self.output}: output must end in .jsonl or .parquet (or .jsonl.gz for gzip-compressed "
                                "JSON lines)")
        if self.batch_size < 1:
            raise PreforchError(f"score: batch_size must be >= 1, got {self.batch_size}")
        check_device(self.device, "device")
        if not self.scorers:
            raise PreforchError("score: setting 'scorers' is empty; give at least one scorer spec")
        for i, spec in enumerate(self.scorers, 1):
            if not isinstance(spec, dict) or "type" not in spec:
                raise PreforchError(f"score: scorer {i} is {spec!r}; expected a mapping with a 'type' "
                                    f"(one of {sorted(SCORER_TYPE_NAMES)})")


def output_kind(path: str | Path) -> str:
    """'.jsonl', '.jsonl.gz' or '.parquet' (or whatever else the name ends in)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    return "".join(suffixes[-2:]) if suffixes[-1:] == [".gz"] else "".join(suffixes[-1:])


@dataclass
class TrainAdapterJob(AdapterConfig, RowReading):
    """Everything `preforch adapter train` needs: the data, where to write, and the adapter settings."""

    data: str = field(EMBEDDED_EXAMPLE, help="preference data: a .jsonl/.json/.parquet/.csv file, a saved datasets "
                      "folder, or an embedded set: 'embedded:example' (HH harmless + HH helpful + UltraFeedback, "
                      "pooled), embedded:all (the three + coconot), embedded:hh, embedded:hh-helpful, "
                      "embedded:ultrafeedback, embedded:coconot, embedded:helpful, embedded:helpful-all")
    output: str = field("runs/adapter", help="adapter folder to write")
    overwrite: bool = field(False, help="replace an existing output folder")
    kind_column: str = field("kind", help="optional column naming each row's prompt kind (for per-kind reports)")
    limit_per_kind: int | None = field(None, help="embedded sets only: rows per kind, the first of each file "
                                       "(balanced when <= 889, the UltraFeedback count; null = all)")
    scorers: list[dict] = field([{"type": "builtin"}], help="scorer specs used when the data has no "
                                "'score.<objective>' columns (see `preforch score --help`); default: the built-in "
                                "harmless/helpful/concise models")
    score_batch_size: int = field(64, help="responses per scoring chunk")
    score_cache: bool = field(True, help="reuse and store scores in the on-disk score cache")
    plot: bool = field(True, help="write weights_by_kind.png (needs matplotlib, the 'plot' extra)")
    examples: int = field(6, help="validation prompts printed with their weights")
    progress: bool = field(True, help="show progress bars")

    def adapter_config(self) -> AdapterConfig:
        names = {f.name for f in dataclasses.fields(AdapterConfig)}
        return AdapterConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


@dataclass
class EvaluatePart:
    """What every `preforch evaluate` job shares: the adapter's batches, plots, the output folder's overwrite and
    whether the adapter's encoder code may run (each job names its own output_dir)."""

    batch_size: int = field(64, help="prompts per adapter batch")
    plots: bool = field(True, help="write PNG plots (needs matplotlib, the `plot` extra)")
    overwrite: bool = field(False, help="replace an existing output folder")
    trust_remote_code: bool = field(False, help="allow custom model code from the adapter's encoder folder (only "
                                                "if you trust it; an adapter cannot allow it itself)")


@dataclass
class EvaluateScoresPart(EvaluatePart):
    """An evaluation of scores against the adapter's: the scorers must be the adapter's unless allowed."""

    allow_scorer_mismatch: bool = field(False, help="evaluate scores made by other scorers than the ones the adapter "
                                                    "was trained with (the data's .provenance.json, written by "
                                                    "`preforch score` / `generate`, against the adapter's); logged. "
                                                    "Off: refused")


@dataclass
class EvaluateAdapterConfig(EvaluateScoresPart, RowReading):
    """Held-out quality of a trained adapter (KL, top-1, calibration, pairwise accuracy vs fixed weights)."""

    adapter: str | None = field(None, help="adapter folder (from `preforch adapter train`)")
    data: str | None = field(None, help="preference data with score.<objective> and score_rejected.<objective> "
                             "columns (raw scores, same objectives as the adapter)")
    test_data: str | None = field(None, help="held-out data; null = the adapter's recorded test split of `data` "
                                  "(its test_fraction and seed: rows it never trained or early-stopped on)")
    reward_model_prompts: list[str] = field(["builtin"], help="heads folders (or 'builtin' for the shipped heads) "
                                            "whose training_prompts.json lists prompts a reward model was trained on: "
                                            "excluded from the test rows and from the rows fixed vectors are chosen "
                                            "on; [] when the scores came from models with unknown training data")
    tau: float | None = field(None, help="target temperature for w*; null = the adapter's")
    bootstrap: int = field(1000, help="bootstrap resamples (over prompts) for the 95% intervals and p-values")
    resolution: int = field(10, help="simplex lattice resolution for fixed weight vectors (entries i/resolution)")
    calibration_bins: int = field(10, help="bins of the max weight for the calibration error")
    kind_column: str = field("kind", help="column naming each row's prompt kind (for per-kind rows)")
    output_dir: str = field("runs/evaluate_adapter", help="folder for report.json, report.md and plots")

    def __post_init__(self) -> None:
        if not self.adapter or not self.data:
            raise PreforchError("evaluate adapter: settings 'adapter' and 'data' are required")
        if self.resolution < 1 or self.calibration_bins < 1 or self.bootstrap < 0:
            raise PreforchError(f"evaluate adapter: resolution ({self.resolution}) and calibration_bins "
                                f"({self.calibration_bins}) must be >= 1, bootstrap ({self.bootstrap}) >= 0")


@dataclass
class EvaluateResponsesConfig(EvaluateScoresPart):
    """Mean normalised rewards of responses under prompt-aware vs fixed weightings; fronts and hypervolume."""

    responses: str | None = field(None, help="rows of prompt, response and score.<objective> (raw); several rows per "
                                  "prompt = best-of-N candidates; a 'policy' column = one response per policy")
    adapter: str | None = field(None, help="adapter folder: gives the prompt-aware weights and the normaliser")
    weights_file: str | None = field(None, help="precomputed prompt-aware weights instead of an adapter: rows of "
                                     "prompt and weight.<objective>; its prompts must match the responses'")
    normalizer: str | None = field(None, help="normalizer.json; null = the adapter's, else z-scores fitted on the "
                                   "responses themselves")
    mode: Literal["auto", "best_of_n", "policies"] = field("auto", help="auto = policies when a 'policy' column "
                                                           "exists, else best_of_n")
    aware_policy: str | None = field(None, help="policies mode: the prompt-aware policy's name")
    resolution: int = field(10, help="simplex lattice resolution for the fixed weightings (best_of_n)")
    reference_point: list[float] | None = field(None, help="hypervolume reference point (one per objective); null "
                                                "= per group, the minimum of all points less 10% of each range")
    kind_column: str = field("kind", help="column naming each prompt's kind")
    prompt_column: str = field("prompt", help="column holding each prompt (text, HH text or a message list)")
    output_dir: str = field("runs/evaluate_responses", help="folder for report.json, report.md and plots")

    def __post_init__(self) -> None:
        if not self.responses:
            raise PreforchError("evaluate responses: setting 'responses' is required")
        if self.adapter and self.weights_file:
            raise PreforchError("evaluate responses: give 'adapter' or 'weights_file', not both")
        if self.resolution < 1:
            raise PreforchError(f"evaluate responses: resolution must be >= 1, got {self.resolution}")


@dataclass
class EvaluateRoutingConfig(EvaluatePart):
    """Do the weights go where they should? AUC, mean weights and top-1 share on labelled prompts."""

    data: str | None = field(None, help="labelled prompts (JSONL, JSON, CSV, Parquet): a prompt column (text, HH "
                             "dialogue or a message list ending with a user turn) and either an expected column "
                             "naming the objective that should dominate, or one 0/1 column label.<objective> per "
                             "labelled objective")
    adapter: str | None = field(None, help="adapter folder whose weights are evaluated")
    weights_file: str | None = field(None, help="precomputed weights instead of an adapter: rows of prompt and "
                                     "weight.<objective>, covering every evaluated prompt")
    split: str | None = field(None, help="evaluate only the rows whose split column has this value (the shipped "
                              "probes: validation for choosing settings, test for reporting); null = every row")
    pools: dict = field({}, help="named sets of groups reported together, e.g. {safety: [harmful, benign]}; an "
                        "empty list pools every group")
    prompt_column: str = field("prompt", help="column holding each prompt")
    expected_column: str = field("expected", help="column naming the objective that should get the largest weight")
    group_column: str = field("group", help="column naming each prompt's group (per-group tables); absent = none")
    split_column: str = field("split", help="column the split setting selects on")
    bootstrap: int = field(1000, help="bootstrap resamples (over prompts) for the 95% intervals")
    calibration_bins: int = field(5, help="equal-width bins of each weight for the calibration table")
    output_dir: str = field("runs/evaluate_routing", help="folder for report.json, report.txt and the plot "
                                                          "(weights_by_label.png)")

    def __post_init__(self) -> None:
        if not self.data:
            raise PreforchError("evaluate routing: setting 'data' is required")
        if bool(self.adapter) == bool(self.weights_file):
            raise PreforchError("evaluate routing: give exactly one of 'adapter' and 'weights_file'")
        if self.bootstrap < 0 or self.calibration_bins < 1:
            raise PreforchError(f"evaluate routing: bootstrap ({self.bootstrap}) must be >= 0 and calibration_bins "
                                f"({self.calibration_bins}) >= 1")
        for name, members in self.pools.items():
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise PreforchError(f"evaluate routing: pool {name!r} must be a list of group names, got {members!r}")


GenerateStrategy = Literal["sample", "best_of_n", "conditioned"]


@dataclass
class GenerateJobConfig(GenerationConfig, FloorSettings, WeightingSettings):
    """Settings of `preforch generate`: plain sampling, best-of-N with prompt-aware weights, or a conditioned
    policy asked for the scores the weights imply. The weights come from the shared
    :class:`~preforch.weighting.WeightingSettings` (user_weights in the scorers' objective order; conditioned: the
    adapter's, or the tags' without one)."""

    strategy: GenerateStrategy | None = field(None, help="sample, best_of_n (needs best_of) or conditioned (a policy "
                                                         "folder written by `preforch align conditioned`, tagged "
                                                         "with desired scores from the weights); null = best_of_n "
                                                         "when best_of is set, else sample")
    policy: str = field("embedded:smollm2", help="policy: embedded:smollm2, a local folder, or a hub name (online only)")
    dtype: PolicyDType = field("float32", help="policy dtype")
    device: str = field(DEFAULT_DEVICE, help=f"torch device of the policy, the scorers and the adapter: {DEVICE_CHOICES}")
    trust_remote_code: bool = field(False, help="allow custom model code from the policy folder and the adapter's "
                                                "encoder folder (only if you trust them; an artifact cannot allow it)")
    prompts: list[str] = field([], help="prompts given inline (YAML list, or --prompts P1 P2 ...); each is one "
                                        "user turn (or HH dialogue text)")
    prompts_file: str | None = field(None, help="prompts file: .txt (one per line) or a table with a 'prompt' "
                                                 "(text or message list) or 'messages' column "
                                                 "(.jsonl/.json/.parquet/.csv, optionally .gz)")
    limit: int | None = field(None, help="use only the first LIMIT prompts")
    best_of: int | None = field(None, help="best-of-N: sample N >= 2 replies per prompt and keep the best by "
                                           "R = sum_k w_k s~_k; null = plain sampling")
    scorers: list[dict] = field([{"type": "builtin"}], help="best-of-N scorer specs (as in `preforch score`)")
    score_batch_size: int = field(64, help="candidates per scoring batch")
    adapter: str | None = field(None, help="adapter folder: per-prompt weights w(x) and its saved normaliser")
    allow_scorer_mismatch: bool = field(False, help="best-of-N with scorers other than the ones the adapter was "
                                                    "trained with (its provenance.json); logged. Off: refused")
    all_candidates: bool = field(False, help="best-of-N: also write every candidate with its scores and R")
    output: str | None = field(None, help="JSONL output file; null = print to stdout")
    candidates_output: str | None = field(None, help="best-of-N: also write every candidate as one row (prompt, "
                                          "response, score.<objective>, candidate), the input of `preforch evaluate "
                                          "responses`; a .jsonl file")
    overwrite: bool = field(False, help="replace existing output files")
    progress: bool = field(True, help="show progress bars")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.prompts and not self.prompts_file:
            raise PreforchError("generate: give prompts (--prompts ... or --prompts-file FILE)")
        if self.best_of is not None and self.best_of < 2:
            raise PreforchError(f"best-of-N needs N >= 2 candidates per prompt, got best_of {self.best_of}")
        strategy = self.chosen_strategy()
        if strategy == "best_of_n" and self.best_of is None:
            raise PreforchError("generate: strategy best_of_n needs --best-of N")
        if strategy != "best_of_n" and self.best_of is not None:
            raise PreforchError(f"generate: best_of applies to strategy best_of_n, not {strategy}")
        if strategy == "sample" and (self.adapter or self.user_weights or self.blend is not None or self.weight_mode):
            raise PreforchError("generate: adapter, weight_mode, user_weights and blend only apply with best_of N "
                                "or strategy conditioned")
        if strategy != "best_of_n" and (self.all_candidates or self.candidates_output):
            raise PreforchError("generate: all_candidates and candidates_output only apply with best_of N")
        if strategy == "best_of_n" and not self.do_sample:
            raise PreforchError("best-of-N needs sampled candidates: set do_sample: true")
        try:
            weighting = self.weighting()
        except PreforchError as err:
            raise PreforchError(f"generate: {err}") from None
        if strategy != "sample":
            if weighting.needs_adapter and not self.adapter:
                raise PreforchError(f"{strategy} with weight mode {weighting.mode!r} needs --adapter DIR (or give "
                                    "--user-weights w1,w2,... for fixed weights)")
        for name in ("output", "candidates_output"):
            path = getattr(self, name)
            if path and not path.endswith(".jsonl"):
                raise PreforchError(f"{path}: {name} must be a .jsonl file")
        if self.output and self.output == self.candidates_output:
            raise PreforchError(f"{self.output}: output and candidates_output must be different files")
        if self.limit is not None and self.limit < 1:
            raise PreforchError(f"generate: limit must be >= 1, got {self.limit}")
        check_device(self.device, "generate: device")
        if self.floor and strategy != "best_of_n":
            raise PreforchError(f"generate: floor applies to strategy best_of_n, not {strategy}")
        try:
            self.floor_rule()
        except PreforchError as err:
            raise PreforchError(f"generate: {err}") from None

    def chosen_strategy(self) -> str:
        return self.strategy or ("best_of_n" if self.best_of is not None else "sample")

    def generation(self) -> GenerationConfig:
        return GenerationConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GenerationConfig)})


def recipe_sections() -> dict[str, type]:
    """Each recipe-file section's config class."""
    return {"score": ScoreConfig, "adapter": TrainAdapterJob, "evaluate_adapter": EvaluateAdapterConfig}
