"""Rows in for the alignment routes: prompts (GRPO/RLOO), responses to pair (DPO), responses to tag (RiC).

Prompts are plain text here; :func:`policy_prompt` wraps them as a chat turn when the policy's tokenizer has a
chat template (TRL then applies it), otherwise passes the text as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from preforch.data.load import read_table, render_messages, split_hh, to_preference_data
from preforch.errors import PreforchError
from preforch.types import PreferenceData

EMBEDDED_EXAMPLE = "embedded:example"


def load_rows(data: str, limit: int | None = None, seed: int = 0) -> tuple[list[dict[str, Any]], str]:
    """Rows of ``data`` (a file, a datasets folder or 'embedded:example'), shuffled with ``seed`` when ``limit``
    cuts them, and where they came from (for error messages)."""
    if data == EMBEDDED_EXAMPLE:
        from preforch.data.example import load_example

        ex = load_example(seed=seed)
        rows = [{"prompt": p, "chosen": c, "rejected": r, "kind": k}
                for p, c, r, k in zip(ex.prompts, ex.chosen, ex.rejected or [], ex.kinds or [])]
        source = ex.source
    else:
        rows, source = read_table(data), str(data)
    if not rows:
        raise PreforchError(f"{source}: no rows")
    if limit is not None and limit < len(rows):
        order = np.random.default_rng(seed).permutation(len(rows))[:limit]
        rows = [rows[i] for i in sorted(order)]
    return rows, source


def prompts_from_rows(rows: list[dict[str, Any]], prompt_column: str, source: str) -> list[str]:
    """The prompt of each row: ``prompt_column`` (text or a messages list), else HH 'chosen' dialogues,
    else a 'messages' list. Errors name the row and the columns found."""
    columns = list(rows[0])
    out = []
    for i, row in enumerate(rows, 1):
        where = f"{source}: row {i}"
        if prompt_column in row and row[prompt_column] is not None:
            value = row[prompt_column]
            text = render_messages(value) if isinstance(value, list) else str(value)
        elif "chosen" in row and isinstance(row["chosen"], str):
            try:
                text = split_hh(row["chosen"])[0]
            except ValueError as err:
                raise PreforchError(f"{where}: column {prompt_column!r} missing and 'chosen' is not an HH "
                                    f"dialogue ({err})") from None
        elif isinstance(row.get("messages"), list):
            msgs = row["messages"]
            text = render_messages(msgs[:-1] if msgs and msgs[-1].get("role") == "assistant" else msgs)
        else:
            raise PreforchError(f"{where}: missing column {prompt_column!r} (the prompt); columns are {columns}")
        if not text.strip():
            raise PreforchError(f"{where}, column {prompt_column!r}: empty prompt")
        out.append(text)
    return out


def preference_rows(rows: list[dict[str, Any]], source: str, prompt_column: str = "prompt") -> PreferenceData:
    """Prompt/chosen[/rejected] of the rows (any shape 'preforch score' accepts)."""
    if prompt_column != "prompt" and rows and prompt_column in rows[0]:
        rows = [{**{k: v for k, v in r.items() if k != "prompt"}, "prompt": r[prompt_column]} for r in rows]
    return to_preference_data(rows, source=source)


def candidates_from_rows(rows: list[dict[str, Any]], columns: list[str], source: str) -> list[list[str]]:
    """Several responses per row from ``columns`` (each a string, or a list of strings). Shape: [N][G]."""
    if not columns:
        raise PreforchError(f"{source}: no candidate columns configured (setting candidate_columns)")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise PreforchError(f"{source}: missing candidate column(s) {missing}; columns are {list(rows[0])}")
    out = []
    for i, row in enumerate(rows, 1):
        found: list[str] = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, list):
                found.extend(str(v) for v in value)
            elif value is not None:
                found.append(str(value))
        if len(found) < 2:
            raise PreforchError(f"{source}: row {i}: {len(found)} candidate response(s) in {columns}, need >= 2")
        out.append(found)
    return out


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def policy_prompt(text: str, chat: bool):
    """What TRL gets as 'prompt': a one-turn conversation when the tokenizer has a chat template, else text."""
    return [{"role": "user", "content": text}] if chat else text


def policy_completion(text: str, chat: bool):
    return [{"role": "assistant", "content": text}] if chat else text
