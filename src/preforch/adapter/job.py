"""`preforch adapter train`: data in (scored or not), adapter folder and report out."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preforch.adapter.config import AdapterConfig
from preforch.adapter.train import TrainResult, format_report, train_adapter
from preforch.atomic import refuse_existing, write_json, write_text
from preforch.config import field
from preforch.errors import PreforchError
from preforch.types import PreferenceData

log = logging.getLogger(__name__)
EMBEDDED_EXAMPLE = "embedded:example"
REPORT_NAME = "report.json"
SCORES_NAME = "scores.parquet"
PLOT_NAME = "weights_by_kind.png"


@dataclass
class TrainAdapterJob(AdapterConfig):
    """Everything `preforch adapter train` needs: the data, where to write, and the adapter settings."""

    data: str = field(EMBEDDED_EXAMPLE, help="preference data: a .jsonl/.json/.parquet/.csv file, a saved datasets "
                      "folder, or 'embedded:example' (HH harmless + UltraFeedback pooled)")
    output: str = field("runs/adapter", help="adapter folder to write")
    overwrite: bool = field(False, help="replace an existing output folder")
    kind_column: str = field("kind", help="optional column naming each row's prompt kind (for per-kind reports)")
    limit_per_kind: int | None = field(None, help="embedded example only: rows per source set (null = all)")
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


def load_job_data(job: TrainAdapterJob) -> PreferenceData:
    if job.data == EMBEDDED_EXAMPLE:
        from preforch.data.example import load_example

        return load_example(job.limit_per_kind, seed=job.seed)
    from preforch.data.load import load_preference_data

    return load_preference_data(job.data, kind_column=job.kind_column)


def score_job_data(job: TrainAdapterJob, data: PreferenceData) -> PreferenceData:
    """Score the preferred and rejected responses with the configured scorers (cached, resumable)."""
    from preforch.rewards.cache import ScoreCache
    from preforch.rewards.multi import MultiScorer
    from preforch.rewards.pipeline import build_scorers, score_preference_data

    if not job.scorers:
        raise PreforchError(f"{data.source}: no 'score.<objective>' columns and no scorers configured")
    started = time.perf_counter()
    cache = ScoreCache() if job.score_cache else None
    multi = MultiScorer(build_scorers(job.scorers, device=job.device), batch_size=job.score_batch_size, cache=cache,
                        progress=job.progress)
    chosen, rejected = score_preference_data(data, multi, source=data.source)
    n = len(data) * (2 if rejected is not None else 1)
    seconds = time.perf_counter() - started
    print(f"scored {n} responses on {multi.objectives} in {seconds:.1f}s "
          f"({multi.hits} from cache, {n / max(seconds, 1e-9):.1f} responses/s)")
    data.objectives, data.scores_chosen, data.scores_rejected = list(multi.objectives), chosen, rejected
    return data


def format_examples(prompts: list[str], weights: np.ndarray, objectives: list[str], kinds: list[str] | None) -> str:
    lines = ["example validation prompts and their weights:"]
    for i, (prompt, w) in enumerate(zip(prompts, weights)):
        text = " ".join(prompt.replace("Human:", "").split())[:70]
        kind = f"[{kinds[i]}] " if kinds else ""
        lines.append(f"  {kind}{text!r}\n      " + "  ".join(f"{n} {x:.2f}" for n, x in zip(objectives, w)))
    return "\n".join(lines)


def _example_rows(result: TrainResult, data: PreferenceData, count: int) -> list[int]:
    """A few validation rows, spread over the prompt kinds."""
    val = list(result.val_index)
    if data.kinds is None:
        return val[:count]
    by_kind: dict[str, list[int]] = {}
    for i in val:
        by_kind.setdefault(data.kinds[i], []).append(i)
    picked: list[int] = []
    while len(picked) < min(count, len(val)):
        for rows in by_kind.values():
            if rows and len(picked) < count:
                picked.append(rows.pop(0))
    return picked


def run_train_job(job: TrainAdapterJob, data: PreferenceData | None = None) -> TrainResult:
    """Load (and if needed score) the data, train, save the adapter folder with its report, scores and plot."""
    out = Path(job.output)
    refuse_existing(out, job.overwrite)  # fail before any expensive work
    started = time.perf_counter()
    data = data if data is not None else load_job_data(job)
    if data.scores_chosen is None:
        data = score_job_data(job, data)
    result = train_adapter(job.adapter_config(), data, progress=job.progress)
    adapter = result.adapter
    val_weights = adapter.predict_from_embeddings(result.val_embeddings).numpy()  # [V, K]
    val_kinds = None if data.kinds is None else [data.kinds[i] for i in result.val_index]
    picked = _example_rows(result, data, job.examples)
    position = {row: j for j, row in enumerate(result.val_index)}
    text = format_report(result.report)
    if picked:
        text += "\n" + format_examples([data.prompts[i] for i in picked], val_weights[[position[i] for i in picked]],
                                       adapter.objectives, None if data.kinds is None else [data.kinds[i] for i in picked])
    adapter.save_pretrained(out, overwrite=job.overwrite)
    write_json(out / REPORT_NAME, result.report.to_dict())
    write_text(out / "report.txt", text + "\n")
    from preforch.data.load import rows_from_preference_data, write_table

    write_table(rows_from_preference_data(data), out / SCORES_NAME)
    if job.plot:
        try:
            from preforch.evaluate.plots import plot_weights_by_kind

            plot_weights_by_kind(adapter.objectives, val_weights, val_kinds, out / PLOT_NAME,
                                 title="adapter weights on validation prompts, by prompt kind")
        except ImportError:
            log.warning("matplotlib is not installed (pip install 'preforch[plot]'): no plot written")
    print(text)
    print(f"adapter, report, scores ({SCORES_NAME}) and plot written to {out} "
          f"[{time.perf_counter() - started:.1f}s in all]")
    return result
