"""What made an artifact: the scorers behind each objective (their specs and content fingerprints), the data file
and its row count, and the preforch version. An adapter or heads folder keeps it as ``provenance.json``; a scored
data file (`preforch score`) or a normaliser file as ``<name>.provenance.json`` beside it.

An adapter normalises scores with statistics fitted on its own scorers' outputs. Matching scorers by objective
name alone let another model (or a renamed rule) stand in for "helpful" and silently mis-scale every reward
(issue 25), so the commands that score with an adapter (serve, generate, align) compare the scorers they are given with the
recorded ones, and `evaluate adapter` / `evaluate responses` the scorers recorded for their score columns:
a different scorer behind an objective is an error naming both, unless the user allows it (then a warning).
A scorer's fingerprint is its ``identity()``: model-folder content hashes, head weights, rule name and version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from preforch import __version__
from preforch.artifacts import read_object, require_format
from preforch.errors import PreforchError, setting_hint

log = logging.getLogger(__name__)

PROVENANCE_NAME = "provenance.json"
#: Suffix of the record `preforch score` writes beside a scored data file.
SCORES_SUFFIX = ".provenance.json"
FORMAT_VERSION = 1


def scorer_records(specs: Sequence[dict], scorers: Sequence) -> list[dict]:
    """One record per scorer (``build_scorers`` makes one per spec): its spec, objectives and fingerprint."""
    return [{"spec": dict(spec), "objectives": list(scorer.objectives), "fingerprint": scorer.identity()}
            for spec, scorer in zip(specs, scorers)]


def file_fingerprint(path: str | Path) -> str | None:
    """sha256 of a data file's bytes; None for what is not one file (a datasets folder, an embedded set)."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def data_record(source: str, rows: int) -> dict:
    """A data source (a file's fingerprint; None for an embedded set, pinned by the preforch version) and its rows."""
    return {"source": str(source), "fingerprint": file_fingerprint(source), "rows": int(rows)}


def make_provenance(scorers: list[dict] | None, data: str | list[dict], rows: int | None = None) -> dict:
    """The record: ``scorers`` None when the scores came with the data (``score.<objective>`` columns). ``data`` is
    one source with its ``rows``, or a list of :func:`data_record` (heads trained on several sources)."""
    return {"format_version": FORMAT_VERSION, "preforch_version": __version__, "scorers": scorers,
            "data": data if isinstance(data, list) else data_record(data, rows or 0)}


def provenance_path(artifact: str | Path) -> Path:
    """Where an artifact's record lives: ``provenance.json`` in a folder (adapter, heads), ``<name>.provenance.json``
    beside a file (scored data, a normaliser file)."""
    artifact = Path(artifact)
    return artifact / PROVENANCE_NAME if artifact.is_dir() else artifact.parent / f"{artifact.name}{SCORES_SUFFIX}"


def read_provenance(artifact: str | Path) -> dict | None:
    """An artifact's record (:func:`provenance_path`), or None for one saved before provenance was recorded."""
    path = provenance_path(artifact)
    if not path.exists() and not path.is_symlink():
        return None
    return _checked(read_object(path, "provenance record"), path)


def _checked(record: dict, path: Path) -> dict:
    require_format(record, path, FORMAT_VERSION)
    scorers = record.get("scorers")
    if scorers is not None and (not isinstance(scorers, list) or not all(
            isinstance(s, dict) and isinstance(s.get("objectives"), list) and isinstance(s.get("fingerprint"), str)
            for s in scorers)):
        raise PreforchError(f"{path}: 'scorers' must be null or a list of {{objectives, fingerprint, spec}}")
    return record


def _by_objective(records: list[dict]) -> dict[str, dict]:
    return {name: record for record in records for name in record["objectives"]}


def check_scorers(adapter_folder: str | Path, specs: Sequence[dict], scorers: Sequence, where: str,
                  allow_mismatch: bool = False) -> None:
    """Refuse scorers whose fingerprint differs from the one the adapter's objective was trained with (a warning
    with ``allow_mismatch``). An adapter without a record, or trained on scores that came with its data, cannot be
    checked: one warning says so."""
    check_scorer_records(adapter_folder, scorer_records(specs, scorers), where, allow_mismatch)


def check_scorer_records(adapter_folder: str | Path, given_records: list[dict], where: str,
                         allow_mismatch: bool = False, given_what: str = "the scorer given is") -> None:
    """:func:`check_scorers` on records (:func:`scorer_records`) made elsewhere, e.g. the scorers named by a
    scored data file's record. ``adapter_folder`` may also be a normaliser file with its own record."""
    record = read_provenance(adapter_folder)
    what = "adapter" if Path(adapter_folder).is_dir() else "normaliser"
    if record is None or record.get("scorers") is None:
        why = (f"has no {provenance_path(adapter_folder).name} (saved before preforch recorded its scorers)"
               if record is None else "was fitted on scores that came with its data (score.<objective> columns)")
        log.warning("%s: %s %s %s; the scorers given cannot be checked against the ones it was fitted with",
                    where, what, adapter_folder, why)
        return
    trained = _by_objective(record["scorers"])
    given = _by_objective(given_records)
    differ = [name for name in given if name in trained and trained[name]["fingerprint"] != given[name]["fingerprint"]]
    if not differ:
        return
    name = differ[0]
    message = (f"{where}: objective {name!r} of {what} {adapter_folder} was trained with scores of "
               f"{_describe(trained[name])}, but {given_what} {_describe(given[name])}"
               + (f" ({len(differ) - 1} more objective(s) differ: {differ[1:]})" if len(differ) > 1 else ""))
    if not allow_mismatch:
        raise PreforchError(f"{message}; its normaliser would mis-scale these scores. Give the adapter's scorers, or "
                            f"pass {setting_hint('allow_scorer_mismatch', 'true')} if you mean it")
    log.warning("%s (allowed by allow_scorer_mismatch)", message)


def check_scored_data(adapter_folder: str | Path, scored_file: str | Path, where: str,
                      allow_mismatch: bool = False) -> None:
    """Refuse a data file whose ``score.<objective>`` columns were made by other scorers than the adapter's (the
    record beside it, :func:`provenance_path`, written by `preforch score`); scores without a sidecar cannot be
    checked: one warning says so."""
    if Path(scored_file).parent.resolve() == Path(adapter_folder).resolve():
        return  # the adapter's own scores (scores.parquet in its folder): made by the scorers it records
    record = read_provenance(scored_file)
    if record is None or record.get("scorers") is None:
        log.warning("%s: %s has no %s (its scores were not written by `preforch score`); they cannot be checked "
                    "against the scorers adapter %s was trained with", where, scored_file,
                    provenance_path(scored_file).name, adapter_folder)
        return
    check_scorer_records(adapter_folder, record["scorers"], where, allow_mismatch,
                         given_what=f"the scores of {scored_file} come from")


def _describe(record: dict) -> str:
    spec = record.get("spec") or {}
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(spec.items(), key=lambda kv: (kv[0] != "type", kv[0])))
    fingerprint = record["fingerprint"]
    return f"{{{shown}}} [{fingerprint if len(fingerprint) <= 60 else fingerprint[:57] + '...'}]"
