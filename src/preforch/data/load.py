"""Read preference data from JSONL, JSON, Parquet, CSV or a saved `datasets` folder, in any of the shapes
users have: prompt/chosen/rejected columns, conversational ``messages`` lists, or Anthropic HH dialogues.

Scores a user already has come as columns ``score.<objective>`` (for the preferred response) and optionally
``score_rejected.<objective>``; their column order is the objective order.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from preforch.atomic import write_text
from preforch.conversation import Conversation, as_conversation, reply_text, split_hh, split_messages
from preforch.errors import PreforchError
from preforch.types import PreferenceData

SCORE_PREFIX = "score."
REJECTED_SCORE_PREFIX = "score_rejected."


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _suffix(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a data file as dicts. Formats by suffix: .jsonl, .json, .parquet, .csv (each optionally .gz),
    or a folder written by ``datasets.Dataset.save_to_disk``."""
    path = Path(path)
    if not path.exists():
        raise PreforchError(f"{path}: data file not found")
    if path.is_dir():
        if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
            raise PreforchError(f"{path}: a folder must be a saved `datasets` folder (no dataset_info.json)")
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
            ds = ds[split]
        return ds.to_list()
    kind = _suffix(path)
    if kind == ".jsonl":
        rows = []
        with _open_text(path) as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise PreforchError(f"{path}: line {lineno} is not valid JSON ({err.msg})") from None
                if not isinstance(rows[-1], dict):
                    raise PreforchError(f"{path}: line {lineno} is a {type(rows[-1]).__name__}, expected an object")
        return rows
    if kind == ".json":
        with _open_text(path) as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise PreforchError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise PreforchError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        return data
    if kind == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if kind == ".csv":
        with _open_text(path) as handle:
            return [dict(r) for r in csv.DictReader(handle)]
    raise PreforchError(f"{path}: unknown data format {kind or '(no suffix)'!r}; expected .jsonl, .json, .parquet, "
                        ".csv (optionally .gz) or a saved datasets folder")


def write_table(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write rows atomically as .jsonl or .parquet (by suffix)."""
    path = Path(path)
    kind = _suffix(path)
    if kind == ".jsonl":
        write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif kind == ".parquet":
        import os
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pq.write_table(pa.Table.from_pylist(rows), tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        raise PreforchError(f"{path}: can write .jsonl or .parquet, not {kind or '(no suffix)'!r}")


def read_prompts_file(path: str | Path) -> list[Conversation]:
    """Prompts as conversations, from a .txt file (one prompt per non-empty line, optionally .gz) or any table
    :func:`read_table` reads with a 'prompt' column (text, HH dialogue text or a message list) or a 'messages'
    column (a message list ending with a user turn). An empty or missing prompt is an error naming its row."""
    path = Path(path)
    if not path.is_file():
        raise PreforchError(f"{path}: prompts file not found")
    if path.name.endswith((".txt", ".txt.gz")) or not _suffix(path):
        with _open_text(path) as handle:
            return [as_conversation(line.rstrip("\n"), f"{path}: line {i}")
                    for i, line in enumerate(handle, 1) if line.strip()]
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
    has_rejected = _all_or_none(rows, "rejected", [s != "messages" for s in shapes], source)
    prompts, chosen, rejected = [], [], []
    for i, row in enumerate(rows, 1):
        p, c, r = _parse_row(row, f"{source}: row {i}", has_rejected)
        prompts.append(p)
        chosen.append(c)
        if has_rejected:
            rejected.append(r)
    objectives = _score_objectives(rows, SCORE_PREFIX, source)
    if require_scores and not objectives:
        raise PreforchError(f"{source}: no score columns; expected 'score.<objective>' columns (or configure scorers)")
    scores_c = _score_matrix(rows, objectives, SCORE_PREFIX, source) if objectives else None
    scores_r = None
    rejected_objectives = _score_objectives(rows, REJECTED_SCORE_PREFIX, source)
    if rejected_objectives:
        if rejected_objectives != objectives:
            raise PreforchError(f"{source}: 'score_rejected.*' columns {rejected_objectives} differ from the "
                                f"'score.*' columns {objectives}")
        scores_r = _score_matrix(rows, objectives, REJECTED_SCORE_PREFIX, source)
    kinds = None
    if _all_or_none(rows, kind_column, [True] * len(rows), source):
        kinds = [str(r[kind_column]) for r in rows]
    return PreferenceData(prompts=prompts, chosen=chosen, rejected=rejected if has_rejected else None,
                          objectives=objectives, scores_chosen=scores_c, scores_rejected=scores_r, kinds=kinds,
                          source=source)


def _all_or_none(rows: list[dict[str, Any]], column: str, applies: list[bool], source: str) -> bool:
    """Whether the rows carry ``column``: every applicable row, or none. Mixed presence is an error."""
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


def _score_objectives(rows: list[dict[str, Any]], prefix: str, source: str) -> list[str]:
    """Objective names of the ``prefix`` columns, in first-seen column order over all rows."""
    names: dict[str, None] = {}
    for row in rows:
        for column in row:
            if isinstance(column, str) and column.startswith(prefix):
                names.setdefault(column[len(prefix):], None)
    return list(names)


def _score_matrix(rows: list[dict], objectives: list[str], prefix: str, source: str) -> np.ndarray:
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


