"""Reading a preference data file for a job, with its ``on_bad_rows`` and column settings: the rows set aside
go to ``<output>.rejected_rows.jsonl`` next to the job's output, with one printed line counting them by reason.
The jobs (recipes/) and the align routes (align/data.py) both report through :func:`report_rejected`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from preforch.data.load import read_table, write_table
from preforch.data.rows import ParsedRows, RejectedRow, RowReading, parse_preference_rows

__all__ = ["read_preference_file", "rejected_rows_path", "report_rejected"]

REJECTED_SUFFIX = ".rejected_rows.jsonl"
_DATA_SUFFIXES = (".jsonl.gz", ".jsonl", ".parquet", ".json", ".csv")


def rejected_rows_path(output: str | Path) -> Path:
    """Where a job writing ``output`` (a file or a folder) puts the rows it set aside: beside it, named after it."""
    output = Path(output)
    name = output.name
    for suffix in _DATA_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return output.parent / f"{name}{REJECTED_SUFFIX}"


def report_rejected(rejected: list[RejectedRow], total: int, output: str | Path, source: str) -> Path | None:
    """Write the set-aside rows (row, reason, values) next to ``output`` and print one line counting them by
    reason; nothing when no row was set aside. ``total``: the rows read."""
    if not rejected:
        return None
    path = rejected_rows_path(output)
    write_table([r.to_dict() for r in rejected], path)
    reasons = Counter(r.reason for r in rejected).most_common()
    shown = "; ".join(f"{count}× {reason}" for reason, count in reasons[:3])
    more = f"; {len(reasons) - 3} more reason(s)" if len(reasons) > 3 else ""
    print(f"skipped {len(rejected)} of {total} rows of {source} ({len(reasons)} reason(s): {shown}{more}) "
          f"-> {path}")
    return path


def read_preference_file(path: str | Path, reading: RowReading, output: str | Path, *,
                         rows: list[dict[str, Any]] | None = None, require_scores: bool = False,
                         kind_column: str = "kind") -> ParsedRows:
    """Read ``path`` (or the ``rows`` already read from it) as ``reading`` says; rows set aside are reported
    next to ``output``."""
    rows = read_table(path) if rows is None else rows
    parsed = parse_preference_rows(rows, str(path), require_scores=require_scores, kind_column=kind_column,
                                   columns=reading.column_map(), on_bad_rows=reading.on_bad_rows)
    report_rejected(parsed.rejected, len(parsed.kept) + len(parsed.rejected), output, str(path))
    return parsed
