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
from preforch.errors import PreforchError
from preforch.types import PreferenceData

SCORE_PREFIX = "score."
REJECTED_SCORE_PREFIX = "score_rejected."
HH_ASSISTANT = "\n\nAssistant:"


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


def read_prompts_file(path: str | Path) -> list[str]:
    """Prompts from a .txt file (one per non-empty line, optionally .gz) or any table :func:`read_table` reads
    with a 'prompt' column; an empty or missing prompt is an error naming its row."""
    path = Path(path)
    if not path.is_file():
        raise PreforchError(f"{path}: prompts file not found")
    if path.name.endswith((".txt", ".txt.gz")) or not _suffix(path):
        with _open_text(path) as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    prompts = []
    for i, row in enumerate(read_table(path), 1):
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise PreforchError(f"{path}: row {i} has no text in column 'prompt'")
        prompts.append(row["prompt"])
    return prompts


def split_hh(dialogue: str) -> tuple[str, str]:
    """An HH dialogue → (prompt up to and including the last "Assistant:", the last reply)."""
    cut = dialogue.rfind(HH_ASSISTANT)
    if cut < 0:
        raise ValueError("no '\\n\\nAssistant:' turn")
    return dialogue[: cut + len(HH_ASSISTANT)].strip(), dialogue[cut + len(HH_ASSISTANT) :].strip()


def render_messages(messages: list[dict]) -> str:
    """A message list as HH-style text ("Human: …\\n\\nAssistant: …"); one user turn is just its text."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return str(messages[0].get("content", ""))
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{names.get(m.get('role'), m.get('role'))}: {m.get('content', '')}" for m in messages)


def _split_messages(messages: Any, where: str) -> tuple[str, str]:
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise PreforchError(f"{where}: expected a non-empty list of {{'role', 'content'}} messages")
    if messages[-1].get("role") != "assistant":
        raise PreforchError(f"{where}: the last message must be the assistant's reply, got {messages[-1].get('role')!r}")
    return render_messages(messages[:-1]), str(messages[-1].get("content", ""))


def _text_or_messages(value: Any, where: str) -> str:
    if isinstance(value, list):
        return _split_messages(value, where)[1] if value and value[-1].get("role") == "assistant" else render_messages(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def to_preference_data(rows: list[dict[str, Any]], source: str = "<rows>", require_scores: bool = False,
                       kind_column: str = "kind") -> PreferenceData:
    """Parse rows of any accepted shape. Errors name ``source``, the row (1-based) and the column."""
    if not rows:
        raise PreforchError(f"{source}: no rows")
    columns = list(rows[0].keys())
    prompts, chosen, rejected = [], [], []
    has_rejected = "rejected" in columns
    if "prompt" in columns and "chosen" in columns:
        shape = "columns"
    elif "messages" in columns:
        shape, has_rejected = "messages", False
    elif "chosen" in columns:
        shape = "hh"
    else:
        raise PreforchError(f"{source}: missing columns: expected 'prompt' and 'chosen' (and optionally 'rejected'), "
                            f"a 'messages' list, or HH-style 'chosen'/'rejected' dialogues; got {columns}")
    for i, row in enumerate(rows, 1):
        where = f"{source}: row {i}"
        try:
            if shape == "columns":
                p, c = row["prompt"], row["chosen"]
                r = row.get("rejected") if has_rejected else None
                if isinstance(c, list):  # TRL conversational: chosen holds the whole exchange
                    p_c, c = _split_messages(c, f"{where}, column 'chosen'")
                    p = p if p else p_c
                if isinstance(r, list):
                    r = _split_messages(r, f"{where}, column 'rejected'")[1]
                p = _text_or_messages(p, where)
            elif shape == "messages":
                p, c = _split_messages(row["messages"], f"{where}, column 'messages'")
                r = None
            else:
                p, c = split_hh(str(row["chosen"]))
                r = split_hh(str(row["rejected"]))[1] if has_rejected else None
        except KeyError as err:
            raise PreforchError(f"{where}: missing column {err}") from None
        except ValueError as err:
            raise PreforchError(f"{where}: {err}") from None
        if not str(p).strip():
            raise PreforchError(f"{where}, column 'prompt': empty prompt")
        prompts.append(str(p))
        chosen.append(str(c))
        if has_rejected:
            if r is None:
                raise PreforchError(f"{where}, column 'rejected': missing value")
            rejected.append(str(r))
    objectives = [c[len(SCORE_PREFIX):] for c in columns if c.startswith(SCORE_PREFIX)]
    if require_scores and not objectives:
        raise PreforchError(f"{source}: no score columns; expected 'score.<objective>' columns (or configure scorers)")
    scores_c = _score_matrix(rows, objectives, SCORE_PREFIX, source) if objectives else None
    scores_r = None
    if objectives and all(f"{REJECTED_SCORE_PREFIX}{o}" in columns for o in objectives):
        scores_r = _score_matrix(rows, objectives, REJECTED_SCORE_PREFIX, source)
    kinds = [str(r.get(kind_column, "")) for r in rows] if kind_column in columns else None
    return PreferenceData(prompts=prompts, chosen=chosen, rejected=rejected if has_rejected else None,
                          objectives=objectives, scores_chosen=scores_c, scores_rejected=scores_r, kinds=kinds,
                          source=source)


def _score_matrix(rows: list[dict], objectives: list[str], prefix: str, source: str) -> np.ndarray:
    if len(objectives) < 2:
        raise PreforchError(f"{source}: {len(objectives)} objective(s) {objectives}; at least 2 are needed")
    out = np.empty((len(rows), len(objectives)), dtype=np.float64)
    for i, row in enumerate(rows):
        for k, name in enumerate(objectives):
            column = f"{prefix}{name}"
            value = row.get(column)
            try:
                out[i, k] = float(value)
            except (TypeError, ValueError):
                raise PreforchError(f"{source}: row {i + 1}, column {column!r}: expected a number, got {value!r}") from None
            if not math.isfinite(out[i, k]):
                raise PreforchError(f"{source}: row {i + 1}, column {column!r}: score is {value!r}, expected a finite number")
    return out


def load_preference_data(path: str | Path, require_scores: bool = False, kind_column: str = "kind") -> PreferenceData:
    """Read and parse one data file or folder (see :func:`read_table`)."""
    return to_preference_data(read_table(path), source=str(path), require_scores=require_scores,
                              kind_column=kind_column)


def rows_from_preference_data(data: PreferenceData) -> list[dict[str, Any]]:
    """The inverse of :func:`to_preference_data` for the prompt/chosen/rejected shape (scores included)."""
    rows = []
    for i in range(len(data)):
        row: dict[str, Any] = {"prompt": data.prompts[i], "chosen": data.chosen[i]}
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


