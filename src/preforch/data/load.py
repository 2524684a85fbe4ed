"""Read preference data from JSONL, JSON, Parquet, CSV or a saved `datasets` folder, in any of the shapes
users have: prompt/chosen/rejected columns, conversational ``messages`` lists, or Anthropic HH dialogues.

Scores a user already has come as columns ``score.<objective>`` (for the preferred response) and optionally
``score_rejected.<objective>``; their column order is the objective order.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

from preforch.atomic import read_bytes, read_text, staged_file, write_bytes, write_text
from preforch.conversation import Conversation, as_conversation
from preforch.data.hub import is_hub_name, read_hub_dataset
from preforch.data.rows import (  # noqa: F401  (the row parsing's public names, read from here too)
    REJECTED_SCORE_PREFIX,
    SCORE_PREFIX,
    ColumnMap,
    column_present,
    number_matrix,
    prefixed_columns,
    rows_from_preference_data,
    to_preference_data,
)
from preforch.data.text import check_text, json_value, surrogate_column  # noqa: F401
from preforch.errors import PreforchError
from preforch.types import PreferenceData


_CSV_FIELD_LIMIT = 1 << 30  # csv's default (128 KiB) is no reason to refuse a long response


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        row = json_value(line, f"{path}: line {lineno}")
        if not isinstance(row, dict):
            raise PreforchError(f"{path}: line {lineno} is a {type(row).__name__}, expected an object")
        rows.append(row)
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    data = json_value(read_text(path), str(path))
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise PreforchError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
    return data


def _read_csv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = []
    try:
        for row in reader:
            if None in row:
                raise PreforchError(f"{path}: line {reader.line_num} has {len(reader.fieldnames) + len(row[None])} "
                                    f"fields, the header has {len(reader.fieldnames)}")
            rows.append(dict(row))
    except csv.Error as err:
        raise PreforchError(f"{path}: line {reader.line_num}: not valid CSV ({err})") from None
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = read_bytes(path)
    try:
        return pq.read_table(pa.BufferReader(data)).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreforchError(f"{path}: not a readable parquet file ({first})") from None


def _read_saved_dataset(path: Path) -> list[dict[str, Any]]:
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise PreforchError(f"{path}: a folder must be a saved `datasets` folder (no dataset_info.json)")
    import datasets
    import pyarrow as pa

    try:
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
            ds = ds[split]
        return ds.to_list()
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration, pa.ArrowException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreforchError(f"{path}: not a readable saved `datasets` folder ({type(err).__name__}: {first})") from None


_READERS = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet, ".csv": _read_csv}


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a data file as dicts. Formats by suffix: .jsonl, .json, .parquet, .csv (each optionally .gz),
    a folder written by ``datasets.Dataset.save_to_disk``, or a hub data set name (``owner/name[:split]``) from the
    local ``datasets`` cache (:mod:`preforch.data.hub`). Files are read as UTF-8 (a byte-order mark is
    allowed); every problem is a one-line error naming the file and, where there is one, the line."""
    path = Path(path)
    if not path.exists():
        if is_hub_name(str(path)):  # Anthropic/hh-rlhf[:split], from the local datasets cache
            return read_hub_dataset(str(path))
        raise PreforchError(f"{path}: data file not found")
    if path.is_dir():
        return _read_saved_dataset(path)
    kind = _suffix(path)
    if kind not in _READERS:
        raise PreforchError(f"{path}: unknown data format {kind or '(no suffix)'!r}; expected .jsonl, .json, "
                            ".parquet, .csv (optionally .gz) or a saved datasets folder")
    return _READERS[kind](path)


def write_table(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write rows atomically as .jsonl (gzip-compressed when the name ends in .gz) or .parquet (by suffix)."""
    path = Path(path)
    kind = _suffix(path)
    if kind == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if path.suffix == ".gz":
            write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
        else:
            write_text(path, text)
    elif kind == ".parquet" and path.suffix != ".gz":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with staged_file(path) as tmp:
            pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        raise PreforchError(f"{path}: can write .jsonl, .jsonl.gz or .parquet, not {''.join(path.suffixes) or '(no suffix)'!r}")


def check_writable(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Refuse, before any work, rows that :func:`write_table` could not write to ``path``: values JSON cannot hold
    (bytes, dates from a parquet input) for .jsonl; a column whose type changes between rows, or a type parquet
    cannot store, for .parquet. Errors name the row or the column."""
    path = Path(path)
    if _suffix(path) == ".jsonl":
        for i, row in enumerate(rows, 1):
            try:
                json.dumps(row, ensure_ascii=False)
            except (TypeError, ValueError, RecursionError):
                column, value = next((k, v) for k, v in row.items() if not _json_ok(v))
                raise PreforchError(f"{path}: row {i}, column {column!r}: a {type(value).__name__} value cannot be "
                                    "written as JSON; write .parquet instead") from None
    elif _suffix(path) == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pylist(rows)
            pq.write_table(table.schema.empty_table(), io.BytesIO())  # types parquet cannot store, e.g. empty structs
        except (pa.ArrowException, ValueError, TypeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            column = next((c for c in dict.fromkeys(k for r in rows for k in r) if not _arrow_ok(rows, c)), None)
            where = f"column {column!r}: its values differ in type between rows or are not storable" if column else first
            raise PreforchError(f"{path}: cannot be written as parquet ({where}: {first}); write .jsonl instead") from None


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _arrow_ok(rows: list[dict[str, Any]], column: str) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.table({column: pa.array([r.get(column) for r in rows])})
        pq.write_table(table.schema.empty_table(), io.BytesIO())
    except (pa.ArrowException, ValueError, TypeError):
        return False
    return True


def read_prompts_file(path: str | Path) -> list[Conversation]:
    """Prompts as conversations, from a .txt file (one prompt per non-empty line, optionally .gz) or any table
    :func:`read_table` reads with a 'prompt' column (text, HH dialogue text or a message list) or a 'messages'
    column (a message list ending with a user turn). An empty or missing prompt is an error naming its row."""
    path = Path(path)
    if not path.exists():
        raise PreforchError(f"{path}: prompts file not found")
    if path.name.endswith((".txt", ".txt.gz")) or not _suffix(path):
        text = read_text(path)
        prompts = [as_conversation(line.rstrip("\r"), f"{path}: line {i}")
                   for i, line in enumerate(text.split("\n"), 1) if line.strip()]
        if not prompts:
            raise PreforchError(f"{path}: no prompts")
        return prompts
    prompts = []
    for i, row in enumerate(read_table(path), 1):
        column = "prompt" if "prompt" in row else "messages" if "messages" in row else None
        if column is None or row[column] in (None, "", []):
            raise PreforchError(f"{path}: row {i} has no prompt (a 'prompt' text or message list, or a 'messages' "
                                "list)")
        prompts.append(as_conversation(row[column], f"{path}: row {i}, column {column!r}"))
    if not prompts:
        raise PreforchError(f"{path}: no prompts")
    return prompts


def load_preference_data(path: str | Path, require_scores: bool = False, kind_column: str = "kind",
                         columns: ColumnMap | None = None) -> PreferenceData:
    """Read and parse one data file or folder (see :func:`read_table`); ``columns`` renames its columns."""
    return to_preference_data(read_table(path), source=str(path), require_scores=require_scores,
                              kind_column=kind_column, columns=columns)
