"""`preforch adapter train`: data in (scored or not), adapter folder and report out."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from preforch.adapter.config import AdapterConfig
from preforch.adapter.train import TrainResult, format_report, train_adapter
from preforch.atomic import write_json, write_text
from preforch.config import field
from preforch.errors import PreforchError
from preforch.types import PreferenceData

log = logging.getLogger(__name__)
EMBEDDED_EXAMPLE = "embedded:example"
REPORT_NAME = "report.json"


@dataclass
class TrainAdapterJob(AdapterConfig):
    """Everything `preforch adapter train` needs: the data, where to write, and the adapter settings."""

    data: str = field(EMBEDDED_EXAMPLE, help="preference data: a .jsonl/.json/.parquet/.csv file, a saved datasets "
                      "folder, or 'embedded:example' (HH harmless + UltraFeedback pooled)")
    output: str = field("runs/adapter", help="adapter folder to write")
    overwrite: bool = field(False, help="replace an existing output folder")
    kind_column: str = field("kind", help="optional column naming each row's prompt kind (for per-kind reports)")
    limit_per_kind: int | None = field(None, help="embedded example only: rows per source set (null = all)")
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


def run_train_job(job: TrainAdapterJob, data: PreferenceData | None = None) -> TrainResult:
    """Load (and if needed score) the data, train, save the adapter folder with its report, print the report."""
    out = Path(job.output)
    if out.exists() and not job.overwrite:  # fail before any expensive work
        raise PreforchError(f"{out}: output folder exists; pass --overwrite (overwrite: true) to replace it")
    data = data if data is not None else load_job_data(job)
    if data.scores_chosen is None:
        raise PreforchError(f"{data.source}: no 'score.<objective>' columns; score the data first (preforch score)")
    result = train_adapter(job.adapter_config(), data, progress=job.progress)
    text = format_report(result.report)
    result.adapter.save_pretrained(out, overwrite=job.overwrite)
    write_json(out / REPORT_NAME, result.report.to_dict())
    write_text(out / "report.txt", text + "\n")
    print(text)
    print(f"adapter written to {out}")
    return result
