"""What made an adapter: the scorers behind each objective (their specs and content fingerprints), the data file
and its row count, and the preforch version, saved as ``provenance.json`` next to the adapter's weights.

An adapter normalises scores with statistics fitted on its own scorers' outputs. Matching scorers by objective
name alone let another model (or a renamed rule) stand in for "helpful" and silently mis-scale every reward
(issue 25), so the commands that score with an adapter compare the scorers they are given with the recorded ones:
a different scorer behind an objective is an error naming both, unless the user allows it (then a warning).
A scorer's fingerprint is its ``identity()``: model-folder content hashes, head weights, rule name and version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from preforch.artifacts import read_object, require_format
from preforch.errors import PreforchError, setting_hint

log = logging.getLogger(__name__)

PROVENANCE_NAME = "provenance.json"
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


def make_provenance(scorers: list[dict] | None, data: str, rows: int) -> dict:
    """The record: ``scorers`` None when the scores came with the data (``score.<objective>`` columns)."""
    from preforch import __version__

    return {"format_version": FORMAT_VERSION, "preforch_version": __version__, "scorers": scorers,
            "data": {"source": str(data), "fingerprint": file_fingerprint(data), "rows": int(rows)}}


def read_provenance(folder: str | Path) -> dict | None:
    """The adapter folder's record, or None for an adapter saved before provenance was recorded."""
    path = Path(folder) / PROVENANCE_NAME
    if not path.exists() and not path.is_symlink():
        return None
    record = read_object(path, "adapter provenance")
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
    record = read_provenance(adapter_folder)
    if record is None or record.get("scorers") is None:
        why = ("has no provenance.json (saved before preforch recorded its scorers)" if record is None else
               "was trained on scores that came with its data (score.<objective> columns)")
        log.warning("%s: adapter %s %s; the scorers given cannot be checked against the ones it was trained with",
                    where, adapter_folder, why)
        return
    trained = _by_objective(record["scorers"])
    given = _by_objective(scorer_records(specs, scorers))
    differ = [name for name in given if name in trained and trained[name]["fingerprint"] != given[name]["fingerprint"]]
    if not differ:
        return
    name = differ[0]
    message = (f"{where}: objective {name!r} of adapter {adapter_folder} was trained with scores of "
               f"{_describe(trained[name])}, but the scorer given is {_describe(given[name])}"
               + (f" ({len(differ) - 1} more objective(s) differ: {differ[1:]})" if len(differ) > 1 else ""))
    if not allow_mismatch:
        raise PreforchError(f"{message}; its normaliser would mis-scale these scores. Give the adapter's scorers, or "
                            f"pass {setting_hint('allow_scorer_mismatch', 'true')} if you mean it")
    log.warning("%s (allowed by allow_scorer_mismatch)", message)


def _describe(record: dict) -> str:
    spec = record.get("spec") or {}
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(spec.items(), key=lambda kv: (kv[0] != "type", kv[0])))
    fingerprint = record["fingerprint"]
    return f"{{{shown}}} [{fingerprint if len(fingerprint) <= 60 else fingerprint[:57] + '...'}]"
