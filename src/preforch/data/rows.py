"""Rows of any accepted shape → :class:`~preforch.types.PreferenceData`: prompt/chosen/rejected columns (text or
TRL conversational message lists), a ``messages`` list, or Anthropic HH dialogues; columns of other names mapped
by a :class:`ColumnMap`; rows that cannot be parsed either stop the load (``on_bad_rows: error``, one line naming
the row and column) or are set aside with their reason (``skip``).

Scores a user already has come as columns ``score.<objective>`` (for the preferred response) and optionally
``score_rejected.<objective>``; their column order is the objective order.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field as dc_field
from typing import Any, Literal

import numpy as np

from preforch.config import field
from preforch.conversation import (
    Conversation,
    as_conversation,
    is_hh_dialogue,
    reply_text,
    split_hh,
    split_hh_pair,
    split_hh_prompt,
    split_messages,
)
from preforch.data.text import check_text
from preforch.errors import PreforchError
from preforch.types import PreferenceData

SCORE_PREFIX = "score."
REJECTED_SCORE_PREFIX = "score_rejected."
OnBadRows = Literal["error", "skip"]
ON_BAD_ROWS_HELP = ("a row that cannot be parsed: error stops with one line naming it; skip drops it, writes it with "
                    "its reason to rejected_rows.jsonl next to the output and prints the count by reason")


@dataclass
class RowReading:
    """How a data-reading command reads rows: which columns hold what, and what a row it cannot parse does."""

    prompt_column: str = field("prompt", help="column holding the prompt (text, HH text or a message list), e.g. "
                               "'question'")
    chosen_column: str = field("chosen", help="column holding the preferred response (or, with "
                               "preferred_id_column, response 0)")
    rejected_column: str = field("rejected", help="column holding the rejected response (or, with "
                                 "preferred_id_column, response 1)")
    preferred_id_column: str | None = field(None, help="column saying which of chosen_column (0) and "
                                            "rejected_column (1) is preferred, e.g. PKU-SafeRLHF: --chosen-column "
                                            "response_0 --rejected-column response_1 --preferred-id-column "
                                            "safer_response_id")
    on_bad_rows: OnBadRows = field("error", help=ON_BAD_ROWS_HELP)

    def column_map(self) -> ColumnMap:
        return ColumnMap(self.prompt_column, self.chosen_column, self.rejected_column, self.preferred_id_column)


@dataclass(frozen=True)
class ColumnMap:
    """Which columns hold the prompt, the preferred and the rejected response (see :class:`RowReading`)."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    preferred_id: str | None = None

    @property
    def identity(self) -> bool:
        return (self.prompt, self.chosen, self.rejected, self.preferred_id) == ("prompt", "chosen", "rejected", None)

    def apply(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        """``row`` with its mapped columns under the names the parser reads (prompt, chosen, rejected)."""
        if self.identity:
            return row
        out = dict(row)
        for name, column in (("prompt", self.prompt), ("chosen", self.chosen), ("rejected", self.rejected)):
            if column != name:
                out.pop(name, None)  # the mapped column replaces a column of the parser's name
                if column in row:
                    out[name] = out.pop(column)
        if self.preferred_id is not None:
            if self.preferred_id not in row:
                raise PreforchError(f"{where}: no column {self.preferred_id!r} (preferred_id_column)")
            choice = row[self.preferred_id]
            if isinstance(choice, bool) or str(choice).strip() not in ("0", "1", "0.0", "1.0"):
                raise PreforchError(f"{where}, column {self.preferred_id!r}: expected 0 or 1, got {choice!r}")
            if str(choice).strip().startswith("1"):
                out["chosen"], out["rejected"] = out.get("rejected"), out.get("chosen")
        return out


@dataclass
class RejectedRow:
    """A row set aside by ``on_bad_rows: skip``: its 1-based number, why, and its values as read."""

    row: int
    reason: str
    values: Any

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason, "values": self.values}


@dataclass
class ParsedRows:
    """What :func:`parse_preference_rows` read: the data of the kept rows, their 0-based positions in the input,
    and the rows set aside (empty unless ``on_bad_rows`` is skip)."""

    data: PreferenceData
    kept: list[int]
    rejected: list[RejectedRow] = dc_field(default_factory=list)

    def reasons(self) -> Counter:
        return Counter(r.reason for r in self.rejected)


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


def _lead(lead: str, response: str) -> str:
    """A response after the assistant text a split HH prompt already holds (see :func:`split_hh_prompt`)."""
    return f"{lead}\n\n{response.strip()}".strip() if lead else response


def _parse_row(row: dict[str, Any], where: str, want_rejected: bool) -> tuple[Conversation, str, str | None]:
    """One row of any accepted shape → (conversation, preferred reply, rejected reply or None)."""
    shape = _row_shape(row)
    rejected = None
    if shape == "columns":
        chosen_cell, lead = row["chosen"], ""
        if isinstance(chosen_cell, list) and row["prompt"] in (None, "", []):
            # TRL conversational with the whole exchange in 'chosen'
            prompt, chosen = split_messages(chosen_cell, f"{where}, column 'chosen'")
        else:
            if row["prompt"] is None:
                raise PreforchError(f"{where}, column 'prompt': missing value")
            if isinstance(row["prompt"], str) and is_hh_dialogue(row["prompt"]):
                try:
                    prompt, lead = split_hh_prompt(row["prompt"])
                except PreforchError as err:
                    raise PreforchError(f"{where}, column 'prompt': {err}") from None
            else:
                prompt = as_conversation(row["prompt"], f"{where}, column 'prompt'")
            chosen = _lead(lead, _response(chosen_cell, f"{where}, column 'chosen'"))
        if want_rejected:
            rejected = _lead(lead, _response(row.get("rejected"), f"{where}, column 'rejected'"))
    elif shape == "messages":
        cell = row["messages"]
        if not isinstance(cell, list):
            raise PreforchError(f"{where}, column 'messages': expected a list of {{'role', 'content'}} messages")
        prompt, chosen = split_messages(cell, f"{where}, column 'messages'")
    elif shape == "hh":
        chosen_text = _response(row["chosen"], f"{where}, column 'chosen'")
        if not is_hh_dialogue(chosen_text) and "Human:" not in chosen_text:
            raise PreforchError(f"{where}: no 'prompt' column, and 'chosen' is not an HH dialogue ('Human: …'); "
                                f"columns are {sorted(row)}: name the prompt's with --prompt-column")
        try:
            if want_rejected:
                rejected_text = _response(row.get("rejected"), f"{where}, column 'rejected'")
                prompt, chosen, rejected = split_hh_pair(chosen_text, rejected_text)
            else:
                prompt, chosen = split_hh(chosen_text)
        except PreforchError as err:
            raise PreforchError(f"{where}: {err}" if str(err).startswith("the ") else
                                f"{where}, column 'chosen': {err}") from None
    else:
        raise PreforchError(f"{where}: missing columns: expected 'prompt' and 'chosen' (and optionally "
                            f"'rejected'), a 'messages' list, or HH-style 'chosen'/'rejected' dialogues; got "
                            f"{sorted(row)} (--prompt-column, --chosen-column and --rejected-column name others)")
    return prompt, chosen, rejected


def to_preference_data(rows: list[dict[str, Any]], source: str = "<rows>", require_scores: bool = False,
                       kind_column: str = "kind", columns: ColumnMap | None = None) -> PreferenceData:
    """Parse rows of any accepted shape into conversations and responses; the first bad row is an error (see
    :func:`parse_preference_rows`)."""
    return parse_preference_rows(rows, source, require_scores=require_scores, kind_column=kind_column,
                                 columns=columns).data


class RowChecks:
    """The per-row checks of one table: a bad row raises (error) or is set aside with its reason (skip)."""

    def __init__(self, rows: list[Any], source: str, on_bad_rows: OnBadRows) -> None:
        self.original, self.source, self.skip = rows, source, on_bad_rows == "skip"
        self.rows: list[dict[str, Any]] = []  # as mapped (ColumnMap), set once every row is
        self.bad: dict[int, RejectedRow] = {}

    def check(self, i: int, fn, *args):
        """``fn(*args)`` for row ``i`` (0-based); None when the row is (or was already) set aside."""
        if i in self.bad:
            return None
        try:
            return fn(*args)
        except PreforchError as err:
            if not self.skip:
                raise
            message, prefix = str(err), f"{self.source}: row {i + 1}"
            reason = message[len(prefix):].lstrip(",: ") if message.startswith(prefix) else message
            self.bad[i] = RejectedRow(i + 1, reason, self.original[i])
            return None

    def present(self, column: str, applies: list[bool]) -> bool:
        """Whether the rows carry ``column``: error mode as :func:`column_present`; skip mode sets aside the rows
        without it when others have it."""
        if not self.skip:
            return column_present(self.rows, column, applies, self.source)
        good = [i for i, a in enumerate(applies) if a and i not in self.bad]
        having = [self.rows[i].get(column) is not None for i in good]
        if not any(having):
            return False
        for i, has in zip(good, having):
            if not has:
                self.check(i, _missing, f"{self.source}: row {i + 1}", column)
        return True


def _missing(where: str, column: str) -> None:
    raise PreforchError(f"{where}: no {column!r} value (other rows have one)")


def parse_preference_rows(rows: list[Any], source: str = "<rows>", *, require_scores: bool = False,
                          kind_column: str = "kind", columns: ColumnMap | None = None,
                          on_bad_rows: OnBadRows = "error") -> ParsedRows:
    """Parse rows of any accepted shape into conversations and responses.

    The shape is decided per row, so files may mix shapes. Optional columns (``rejected``, score columns,
    ``kind``) are all-or-nothing: with ``on_bad_rows="error"`` a column some rows have and others lack is an error
    naming the first row without it, and every other problem is an error naming ``source``, the row (1-based)
    and the column; with ``"skip"`` such rows are set aside with that reason and the rest are read.
    """
    if not rows:
        raise PreforchError(f"{source}: no rows")
    table = RowChecks(rows, source, on_bad_rows)
    columns = columns or ColumnMap()
    mapped: list[dict[str, Any]] = [{} for _ in rows]
    for i, row in enumerate(rows):
        where = f"{source}: row {i + 1}"
        if table.check(i, _is_mapping, row, where) is not None:
            mapped[i] = table.check(i, columns.apply, row, where) or {}
    table.rows = mapped
    shapes = [_row_shape(r) for r in mapped]
    has_rejected = table.present("rejected", [s != "messages" for s in shapes])
    objectives = prefixed_columns([r for i, r in enumerate(mapped) if i not in table.bad], SCORE_PREFIX, source)
    if require_scores and not objectives:
        raise PreforchError(f"{source}: no score columns; expected 'score.<objective>' columns (or configure scorers)")
    rejected_objectives = prefixed_columns([r for i, r in enumerate(mapped) if i not in table.bad],
                                           REJECTED_SCORE_PREFIX, source)
    if rejected_objectives and rejected_objectives != objectives:
        raise PreforchError(f"{source}: 'score_rejected.*' columns {rejected_objectives} differ from the "
                            f"'score.*' columns {objectives}")
    if objectives and len(objectives) < 2:
        raise PreforchError(f"{source}: {len(objectives)} objective(s) {objectives}; at least 2 are needed")
    parsed: dict[int, tuple] = {}
    for i, row in enumerate(mapped):
        where = f"{source}: row {i + 1}"
        p = table.check(i, _parse_row, row, where, has_rejected)
        if p is not None:
            table.check(i, check_text, [p[0].text(), p[1], p[2]], where)
        if i in table.bad:
            continue
        numbers = [table.check(i, _row_numbers, row, i, objectives, prefix, source)
                   for prefix, names in ((SCORE_PREFIX, objectives), (REJECTED_SCORE_PREFIX, rejected_objectives))
                   if names]
        if i not in table.bad:
            parsed[i] = (*p, *numbers)
    has_kind = table.present(kind_column, [True] * len(rows))
    kept = [i for i in sorted(parsed) if i not in table.bad]
    if not kept:
        reasons = Counter(r.reason for r in table.bad.values()).most_common(1)
        raise PreforchError(f"{source}: no row could be read ({len(rows)} set aside; the commonest reason: "
                            f"{reasons[0][0]})")
    data = PreferenceData(
        prompts=[parsed[i][0] for i in kept], chosen=[parsed[i][1] for i in kept],
        rejected=[parsed[i][2] for i in kept] if has_rejected else None, objectives=objectives,
        scores_chosen=np.array([parsed[i][3] for i in kept]) if objectives else None,
        scores_rejected=np.array([parsed[i][4] for i in kept]) if rejected_objectives else None,
        kinds=[str(mapped[i][kind_column]) for i in kept] if has_kind else None, source=source)
    return ParsedRows(data=data, kept=kept, rejected=[table.bad[i] for i in sorted(table.bad)])


def _is_mapping(row: Any, where: str) -> bool:
    if not isinstance(row, dict):
        raise PreforchError(f"{where} is a {type(row).__name__}, expected an object")
    return True


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
    return np.array([_row_numbers(row, i, objectives, prefix, source) for i, row in enumerate(rows)],
                    dtype=np.float64).reshape(len(rows), len(objectives))


def _row_numbers(row: dict, i: int, objectives: list[str], prefix: str, source: str) -> list[float]:
    """One row's ``prefix + objective`` numbers (``i`` is 0-based)."""
    out = []
    for name in objectives:
        column = f"{prefix}{name}"
        if column not in row:
            raise PreforchError(f"{source}: row {i + 1} has no column {column!r} (other rows have it)")
        value = row[column]
        if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
            raise PreforchError(f"{source}: row {i + 1}, column {column!r}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise PreforchError(f"{source}: row {i + 1}, column {column!r}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise PreforchError(f"{source}: row {i + 1}, column {column!r}: score is {value!r}, expected a finite number")
        out.append(number)
    return out


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


