"""`preforch adapter train`: data in (scored or not), adapter folder and report out."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from preforch.adapter.splits import SPLIT_NAME, split_record
from preforch.adapter.train import format_report, train_adapter
from preforch.atomic import check_output_dir, refuse_existing, staged_dir, write_json, write_text
from preforch.data import load
from preforch.data.example import is_embedded
from preforch.data.sources import load_data_setting
from preforch.errors import PreforchError
from preforch.evaluate.plots import plot_weights_by_kind
from preforch.provenance import PROVENANCE_NAME, make_provenance, read_provenance, scorer_records
from preforch.recipes import next_step
from preforch.data.bad_rows import read_preference_file
from preforch.recipes.configs import TrainAdapterJob
from preforch.rewards.cache import ScoreCache
from preforch.rewards.multi import MultiScorer
from preforch.rewards.registry import build_scorers
from preforch.rewards.scoring import score_preference_data
from preforch.types import PreferenceData

__all__ = ["TrainAdapterJob", "load_job_data", "run_train_job", "score_job_data"]

log = logging.getLogger(__name__)
EMBEDDED_EXAMPLE = "embedded:example"
REPORT_NAME = "report.json"
SCORES_NAME = "scores.parquet"
PLOT_NAME = "weights_by_kind.png"


def load_job_data(job: TrainAdapterJob) -> PreferenceData:
    """The rows the job's ``data`` names (an embedded set: ``limit_per_kind`` of each kind, shuffled with the seed;
    a file: read with the job's column and ``on_bad_rows`` settings)."""
    if not is_embedded(job.data):
        return read_preference_file(job.data, job, job.output, kind_column=job.kind_column).data
    return load_data_setting(job.data, limit_per_kind=job.limit_per_kind, seed=job.seed, kind_column=job.kind_column)


def score_job_data(job: TrainAdapterJob, data: PreferenceData) -> tuple[PreferenceData, list[dict]]:
    """Score the preferred and rejected responses with the configured scorers (cached, resumable); also returns
    the scorers' provenance records (:func:`preforch.provenance.scorer_records`)."""
    if not job.scorers:
        raise PreforchError(f"{data.source}: no 'score.<objective>' columns and no scorers configured")
    started = time.perf_counter()
    cache = ScoreCache() if job.score_cache else None
    scorers = build_scorers(job.scorers, device=job.device)
    multi = MultiScorer(scorers, batch_size=job.score_batch_size, cache=cache, progress=job.progress)
    chosen, rejected = score_preference_data(data, multi, source=data.source)
    n = len(data) * (2 if rejected is not None else 1)
    seconds = time.perf_counter() - started
    print(f"scored {n} responses on {multi.objectives} in {seconds:.1f}s "
          f"({multi.hits} from cache, {n / max(seconds, 1e-9):.1f} responses/s)")
    data.objectives, data.scores_chosen, data.scores_rejected = list(multi.objectives), chosen, rejected
    return data, scorer_records(job.scorers, scorers)


def format_examples(prompts: list, weights: np.ndarray, objectives: list[str], kinds: list[str] | None) -> str:
    lines = ["example test prompts (final user turn) and their weights:"]
    for i, (prompt, w) in enumerate(zip(prompts, weights)):
        text = " ".join(prompt.last_user.split())[:70]
        kind = f"[{kinds[i]}] " if kinds else ""
        lines.append(f"  {kind}{text!r}\n      " + "  ".join(f"{n} {x:.2f}" for n, x in zip(objectives, w)))
    return "\n".join(lines)


def _example_rows(rows: np.ndarray, data: PreferenceData, count: int) -> list[int]:
    """A few of ``rows``, spread over the prompt kinds."""
    rows = list(rows)
    if data.kinds is None:
        return rows[:count]
    by_kind: dict[str, list[int]] = {}
    for i in rows:
        by_kind.setdefault(data.kinds[i], []).append(i)
    picked: list[int] = []
    while len(picked) < min(count, len(rows)):
        for kind_rows in by_kind.values():
            if kind_rows and len(picked) < count:
                picked.append(kind_rows.pop(0))
    return picked


def run_train_job(job: TrainAdapterJob, data: PreferenceData | None = None):
    """Load (and if needed score) the data, train, and publish the adapter folder with its report, split,
    scores and plot in one atomic step (an interrupted run leaves nothing behind)."""
    out = Path(job.output)
    refuse_existing(out, job.overwrite)  # fail before any expensive work
    check_output_dir(out)
    started = time.perf_counter()
    data = data if data is not None else load_job_data(job)
    # scores that came with the data: the scorers `preforch score` recorded beside the file, if any
    scorers = None if is_embedded(job.data) else (read_provenance(job.data) or {}).get("scorers")
    if data.scores_chosen is None:
        data, scorers = score_job_data(job, data)

    result = train_adapter(job.adapter_config(), data, progress=job.progress)
    adapter = result.adapter
    shown = result.split.test if len(result.split.test) else result.split.val
    shown_emb = result.test_embeddings if len(result.split.test) else result.val_embeddings
    shown_weights = adapter.predict_from_embeddings(shown_emb).numpy()  # [T, K]
    picked = _example_rows(shown, data, job.examples)
    position = {row: j for j, row in enumerate(shown)}
    text = format_report(result.report)
    if result.test_report is not None:
        text += "\n" + format_report(result.test_report)
    if picked:
        text += "\n" + format_examples([data.prompts[i] for i in picked], shown_weights[[position[i] for i in picked]],
                                       adapter.objectives, None if data.kinds is None else [data.kinds[i] for i in picked])
    report = {**result.report.to_dict(), "test": None if result.test_report is None else result.test_report.to_dict()}
    with staged_dir(out, overwrite=job.overwrite) as tmp:
        adapter.write_files(tmp)
        write_json(tmp / REPORT_NAME, report)
        write_json(tmp / SPLIT_NAME, split_record(result.split, data))
        write_json(tmp / PROVENANCE_NAME, make_provenance(scorers, job.data, len(data)))
        write_text(tmp / "report.txt", text + "\n")
        load.write_table(load.rows_from_preference_data(data), tmp / SCORES_NAME)
        if job.plot:
            try:
                kinds = None if data.kinds is None else [data.kinds[i] for i in shown]
                plot_weights_by_kind(adapter.objectives, shown_weights, kinds, tmp / PLOT_NAME,
                                     title=f"adapter weights on {'test' if len(result.split.test) else 'validation'} "
                                           "prompts, by prompt kind")
            except ImportError:
                log.warning("matplotlib is not installed (pip install 'preforch[plot]'): no plot written")
    print(text)
    print(f"adapter, report, split, scores ({SCORES_NAME}) and plot written to {out} "
          f"[{time.perf_counter() - started:.1f}s in all]")
    return result


def run(job) -> int:
    """`preforch adapter train`: train, then print the next commands."""
    run_train_job(job)
    out = job.output
    next_step(f'preforch weights --adapter {out} "How do I pick a lock?" "Write a haiku about rain"',
              "preforch evaluate adapter --config configs/evaluate_adapter.yaml"
              + ("" if out == "runs/example" else f" --adapter {out} --data {out}/scores.parquet"))
    return 0
