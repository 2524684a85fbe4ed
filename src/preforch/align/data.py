"""Rows in for the alignment routes: prompts (GRPO/RLOO), responses to pair (DPO), responses to tag (RiC).

Prompts are conversations here; :func:`policy_prompt` gives TRL the message list when the policy's tokenizer
has a chat template (TRL then applies it), otherwise the conversation's canonical text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from preforch.conversation import Conversation, as_conversation, split_hh, split_messages
from preforch.data.example import is_embedded, load_embedded
from preforch.data.load import column_present, read_table, rows_from_preference_data, to_preference_data
from preforch.data.rows import ColumnMap
from preforch.errors import PreforchError
from preforch.types import PreferenceData


def load_rows(data: str, limit: int | None = None, seed: int = 0,
              columns: ColumnMap | None = None) -> tuple[list[dict[str, Any]], str]:
    """Rows of ``data`` (a file, a datasets folder or an ``embedded:`` set), shuffled with ``seed`` when ``limit``
    cuts them, and where they came from (for error messages); ``columns`` renames the response columns to
    chosen/rejected (and orders them by a preferred-id column)."""
    if is_embedded(data):
        ex = load_embedded(data, seed=seed)
        rows = rows_from_preference_data(ex)
        source = ex.source
    else:
        rows, source = read_table(data), str(data)
    if not rows:
        raise PreforchError(f"{source}: no rows")
    if limit is not None and limit < len(rows):
        order = np.random.default_rng(seed).permutation(len(rows))[:limit]
        rows = [rows[i] for i in sorted(order)]
    if columns is not None and not columns.identity:
        rows = [columns.apply(row, f"{source}: row {i}") for i, row in enumerate(rows, 1)]
    return rows, source


def prompts_from_rows(rows: list[dict[str, Any]], prompt_column: str, source: str) -> list[Conversation]:
    """The conversation of each row: ``prompt_column`` (text, HH text or a message list), else HH 'chosen'
    dialogues, else a 'messages' list. Errors name the row and the columns found."""
    out = []
    for i, row in enumerate(rows, 1):
        where = f"{source}: row {i}"
        if row.get(prompt_column) not in (None, "", []):
            out.append(as_conversation(row[prompt_column], f"{where}, column {prompt_column!r}"))
        elif isinstance(row.get("chosen"), str):
            try:
                out.append(split_hh(row["chosen"])[0])
            except PreforchError as err:
                raise PreforchError(f"{where}: column {prompt_column!r} missing and 'chosen' is not an HH "
                                    f"dialogue ({err})") from None
        elif isinstance(row.get("messages"), list):
            msgs = row["messages"]
            if msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
                out.append(split_messages(msgs, f"{where}, column 'messages'")[0])
            else:
                out.append(as_conversation(msgs, f"{where}, column 'messages'"))
        else:
            raise PreforchError(f"{where}: no prompt: missing or empty column {prompt_column!r}; columns are "
                                f"{sorted(row)}")
    return out


def preference_rows(rows: list[dict[str, Any]], source: str, prompt_column: str = "prompt") -> PreferenceData:
    """Prompt/chosen[/rejected] of the rows (any shape 'preforch score' accepts)."""
    if prompt_column != "prompt" and column_present(rows, prompt_column, source=source):  # decided over all rows
        rows = [{**{k: v for k, v in r.items() if k != "prompt"}, "prompt": r[prompt_column]} for r in rows]
    return to_preference_data(rows, source=source)


def candidates_from_rows(rows: list[dict[str, Any]], columns: list[str], source: str) -> list[list[str]]:
    """Several responses per row from ``columns`` (each a string, or a list of strings). Shape: [N][G]."""
    if not columns:
        raise PreforchError(f"{source}: no candidate columns configured (setting candidate_columns)")
    missing = [c for c in columns if not any(c in row for row in rows)]
    if missing:
        raise PreforchError(f"{source}: missing candidate column(s) {missing}; columns are {list(rows[0])}")
    for c in columns:
        column_present([{c: True} if c in row else {} for row in rows], c, source=source)  # in every row or none
    out = []
    for i, row in enumerate(rows, 1):
        found: list[str] = []
        for c in columns:
            value = row.get(c)
            for item in value if isinstance(value, list) else [] if value is None else [value]:
                if not isinstance(item, str):  # never str(None) or str(3.5) as a "response"
                    raise PreforchError(f"{source}: row {i}, column {c!r}: expected response text, got "
                                        f"{type(item).__name__}")
                found.append(item)
        if len(found) < 2:
            raise PreforchError(f"{source}: row {i}: {len(found)} candidate response(s) in {columns}, need >= 2")
        out.append(found)
    return out


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def policy_prompt(prompt: Conversation, chat: bool):
    """What TRL gets as 'prompt': the message list when the tokenizer has a chat template, else the text."""
    return prompt.to_messages() if chat else prompt.text()


def policy_completion(text: str, chat: bool):
    return [{"role": "assistant", "content": text}] if chat else text
