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
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from preforch.atomic import read_bytes, read_text, staged_file, write_bytes, write_text
from preforch.conversation import Conversation, as_conversation, reply_text, split_hh, split_messages
from preforch.errors import PreforchError
from preforch.types import PreferenceData

SCORE_PREFIX = "score."
REJECTED_SCORE_PREFIX = "score_rejected."


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape that may decode to a lone surrogate
_CSV_FIELD_LIMIT = 1 << 30  # csv's default (128 KiB) is no reason to refuse a long response


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def surrogate_column(value: Any, column: str = "") -> str | None:
    """Where a lone surrogate hides in ``value`` (a string, or lists and dicts of them), or None. JSON escapes
    such as ``"\\ud800"`` decode to one; such text cannot be written as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return column or "value"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = surrogate_column(item, column or repr(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for item in value:
            found = surrogate_column(item, column)
            if found:
                return found
    return None


def check_text(value: Any, where: str) -> None:
    """Refuse text that holds a lone surrogate (from a JSON escape, or an undecodable command-line byte)."""
    found = surrogate_column(value)
    if found:
        place = "" if found == "value" else f", column {found}"
        raise PreforchError(f"{where}{place}: holds a lone surrogate (an invalid \\ud800-\\udfff escape or a "
                            "byte that is not UTF-8), which is not text")


def json_value(text: str, where: str):
    """Parse JSON text; errors (bad JSON, deep nesting, lone surrogates from escapes) are one line naming ``where``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise PreforchError(f"{where} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise PreforchError(f"{where}: JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):
        check_text(value, where)
    return value


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
        from preforch.data.hub import is_hub_name, read_hub_dataset

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


def _response(value: Any, where: str) -> str:
    """A response cell: text, or a TRL conversational list whose last message is the assistant's reply."""
    if isinstance(value, list):
        return reply_text(value, where)
    if not isinstance(value, str):
        got = "null" if value is None or (isinstance(value, float) and math.isnan(value)) else type(value).__name__
        raise PreforchError(f"{where}: expected the response text, got {got}")
    return value


def _row_shape(row: dict[str, Any]) -> str:
    if "prompt" in row and "chosen" in row:
        return "columns"
    if "messages" in row:
        return "messages"
    if "chosen" in row:
        return "hh"
    return "unknown"


def _parse_row(row: dict[str, Any], where: str, want_rejected: bool) -> tuple[Conversation, str, str | None]:
    """One row of any accepted shape → (conversation, preferred reply, rejected reply or None)."""
    shape = _row_shape(row)
    rejected = None
    if shape == "columns":
        chosen_cell = row["chosen"]
        if isinstance(chosen_cell, list) and row["prompt"] in (None, "", []):
            # TRL conversational with the whole exchange in 'chosen'
            prompt, chosen = split_messages(chosen_cell, f"{where}, column 'chosen'")
        else:
            if row["prompt"] is None:
                raise PreforchError(f"{where}, column 'prompt': missing value")
            prompt = as_conversation(row["prompt"], f"{where}, column 'prompt'")
            chosen = _response(chosen_cell, f"{where}, column 'chosen'")
        if want_rejected:
            rejected = _response(row.get("rejected"), f"{where}, column 'rejected'")
    elif shape == "messages":
        cell = row["messages"]
        if not isinstance(cell, list):
            raise PreforchError(f"{where}, column 'messages': expected a list of {{'role', 'content'}} messages")
        prompt, chosen = split_messages(cell, f"{where}, column 'messages'")
    elif shape == "hh":
        chosen_text = _response(row["chosen"], f"{where}, column 'chosen'")
        try:
            prompt, chosen = split_hh(chosen_text)
        except PreforchError as err:
            raise PreforchError(f"{where}, column 'chosen': {err}") from None
        if want_rejected:
            other, rejected = split_hh(_response(row.get("rejected"), f"{where}, column 'rejected'"))
            if other != prompt:
                raise PreforchError(f"{where}: the 'chosen' and 'rejected' dialogues differ before the last "
                                    "assistant turn")
    else:
        raise PreforchError(f"{where}: missing columns: expected 'prompt' and 'chosen' (and optionally "
                            f"'rejected'), a 'messages' list, or HH-style 'chosen'/'rejected' dialogues; got "
                            f"{sorted(row)}")
    return prompt, chosen, rejected


def to_preference_data(rows: list[dict[str, Any]], source: str = "<rows>", require_scores: bool = False,
                       kind_column: str = "kind") -> PreferenceData:
    """Parse rows of any accepted shape into conversations and responses.

    The shape is decided per row, so files may mix shapes. Optional columns (``rejected``, score columns,
    ``kind``) are all-or-nothing: a column some rows have and others lack is an error naming the first row
    without it. Errors name ``source``, the row (1-based) and the column.
    """
    if not rows:
        raise PreforchError(f"{source}: no rows")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise PreforchError(f"{source}: row {i} is a {type(row).__name__}, expected an object")
    shapes = [_row_shape(r) for r in rows]
    has_rejected = column_present(rows, "rejected", [s != "messages" for s in shapes], source)
    prompts, chosen, rejected = [], [], []
    for i, row in enumerate(rows, 1):
        p, c, r = _parse_row(row, f"{source}: row {i}", has_rejected)
        check_text([p.text(), c, r], f"{source}: row {i}")
        prompts.append(p)
        chosen.append(c)
        if has_rejected:
            rejected.append(r)
    objectives = prefixed_columns(rows, SCORE_PREFIX, source)
    if require_scores and not objectives:
        raise PreforchError(f"{source}: no score columns; expected 'score.<objective>' columns (or configure scorers)")
    scores_c = number_matrix(rows, objectives, SCORE_PREFIX, source) if objectives else None
    scores_r = None
    rejected_objectives = prefixed_columns(rows, REJECTED_SCORE_PREFIX, source)
    if rejected_objectives:
        if rejected_objectives != objectives:
            raise PreforchError(f"{source}: 'score_rejected.*' columns {rejected_objectives} differ from the "
                                f"'score.*' columns {objectives}")
        scores_r = number_matrix(rows, objectives, REJECTED_SCORE_PREFIX, source)
    kinds = None
    if column_present(rows, kind_column, [True] * len(rows), source):
        kinds = [str(r[kind_column]) for r in rows]
    return PreferenceData(prompts=prompts, chosen=chosen, rejected=rejected if has_rejected else None,
                          objectives=objectives, scores_chosen=scores_c, scores_rejected=scores_r, kinds=kinds,
                          source=source)


def column_present(rows: list[dict[str, Any]], column: str, applies: list[bool] | None = None,
                   source: str = "<rows>") -> bool:
    """Whether the rows carry ``column`` (not null): every applicable row, or none. Mixed presence is an error
    naming a row without it and a row with it."""
    applies = [True] * len(rows) if applies is None else applies
    present = [column in r and r[column] is not None for r, a in zip(rows, applies) if a]
    if not present or not any(present):
        return False
    if not all(present):
        lacking = next(i for i, (r, a) in enumerate(zip(rows, applies), 1)
                       if a and (column not in r or r[column] is None))
        having = next(i for i, (r, a) in enumerate(zip(rows, applies), 1) if a and r.get(column) is not None)
        raise PreforchError(f"{source}: row {lacking} has no {column!r} value, but row {having} has one; give it "
                            f"in every row or in none")
    return True


def prefixed_columns(rows: list[dict[str, Any]], prefix: str, source: str) -> list[str]:
    """Objective names of the ``prefix`` columns (e.g. ``score.``), in first-seen column order over all rows."""
    names: dict[str, None] = {}
    for row in rows:
        for column in row:
            if isinstance(column, str) and column.startswith(prefix):
                if not column[len(prefix):].strip():
                    raise PreforchError(f"{source}: column {column!r} has an empty objective name")
                names.setdefault(column[len(prefix):], None)
    return list(names)


def number_matrix(rows: list[dict], objectives: list[str], prefix: str, source: str) -> np.ndarray:
    """The ``prefix + objective`` columns of every row as numbers [N, K]; a missing column, a boolean, text that is
    not a number or a non-finite value is an error naming the row and the column."""
    if len(objectives) < 2:
        raise PreforchError(f"{source}: {len(objectives)} objective(s) {objectives}; at least 2 are needed")
    out = np.empty((len(rows), len(objectives)), dtype=np.float64)
    for i, row in enumerate(rows):
        for k, name in enumerate(objectives):
            column = f"{prefix}{name}"
            if column not in row:
                raise PreforchError(f"{source}: row {i + 1} has no column {column!r} (other rows have it)")
            value = row[column]
            if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
                raise PreforchError(f"{source}: row {i + 1}, column {column!r}: expected a number, got {value!r}")
            try:
                out[i, k] = float(value)
            except (TypeError, ValueError, OverflowError):
                raise PreforchError(f"{source}: row {i + 1}, column {column!r}: expected a number, got {value!r}") from None
            if not math.isfinite(out[i, k]):
                raise PreforchError(f"{source}: row {i + 1}, column {column!r}: score is {value!r}, expected a finite number")
    return out


def load_preference_data(path: str | Path, require_scores: bool = False, kind_column: str = "kind") -> PreferenceData:
    """Read and parse one data file or folder (see :func:`read_table`)."""
    return to_preference_data(read_table(path), source=str(path), require_scores=require_scores,
                              kind_column=kind_column)


def rows_from_preference_data(data: PreferenceData) -> list[dict[str, Any]]:
    """The inverse of :func:`to_preference_data`: prompt (a message list, TRL conversational style), chosen,
    rejected, kind and score columns."""
    rows = []
    for i in range(len(data)):
        row: dict[str, Any] = {"prompt": data.prompts[i].to_messages(), "chosen": data.chosen[i]}
        if data.rejected is not None:
            row["rejected"] = data.rejected[i]
        if data.kinds is not None:
            row["kind"] = data.kinds[i]
        for k, name in enumerate(data.objectives):
            if data.scores_chosen is not None:
                row[f"{SCORE_PREFIX}{name}"] = float(data.scores_chosen[i, k])
            if data.scores_rejected is not None:
                row[f"{REJECTED_SCORE_PREFIX}{name}"] = float(data.scores_rejected[i, k])
        rows.append(row)
    return rows


