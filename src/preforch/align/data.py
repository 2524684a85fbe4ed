"""Rows in for the alignment routes: prompts (GRPO/RLOO), responses to pair (DPO), responses to tag (RiC).

Prompts are conversations here; :func:`policy_prompt` gives TRL the message list when the policy's tokenizer
has a chat template (TRL then applies it), otherwise the conversation's canonical text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from preforch.conversation import Conversation, as_conversation, split_hh, split_messages
from preforch.data.bad_rows import rejected_rows_path, report_rejected
from preforch.data.example import is_embedded, load_embedded
from preforch.data.load import column_present, read_table, rows_from_preference_data, to_preference_data
from preforch.data.rows import RowChecks
from preforch.errors import PreforchError
from preforch.types import PreferenceData


def load_rows(data: str, limit: int | None = None, seed: int = 0) -> tuple[list[dict[str, Any]], str]:
    """Rows of ``data`` (a file, a datasets folder or an ``embedded:`` set), shuffled with ``seed`` when ``limit``
    cuts them, and where they came from (for error messages). :func:`read_rows` maps and checks them."""
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
    return rows, source


def prompt_of(row: dict[str, Any], prompt_column: str, where: str) -> Conversation:
    """The conversation of one row: ``prompt_column`` (text, HH text or a message list), else its HH 'chosen'
    dialogue, else its 'messages' list. Errors name ``where`` (source and row) and the columns found."""
    if row.get(prompt_column) not in (None, "", []):
        return as_conversation(row[prompt_column], f"{where}, column {prompt_column!r}")
    if isinstance(row.get("chosen"), str):
        try:
            return split_hh(row["chosen"])[0]
        except PreforchError as err:
            raise PreforchError(f"{where}: column {prompt_column!r} missing and 'chosen' is not an HH "
                                f"dialogue ({err})") from None
    if isinstance(row.get("messages"), list):
        msgs = row["messages"]
        if msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            return split_messages(msgs, f"{where}, column 'messages'")[0]
        return as_conversation(msgs, f"{where}, column 'messages'")
    raise PreforchError(f"{where}: no prompt: missing or empty column {prompt_column!r}; columns are {sorted(row)}")


def prompts_from_rows(rows: list[dict[str, Any]], prompt_column: str, source: str) -> list[Conversation]:
    """The conversation of each row (:func:`prompt_of`)."""
    return [prompt_of(row, prompt_column, f"{source}: row {i}") for i, row in enumerate(rows, 1)]


def preference_of(row: dict[str, Any], prompt_column: str, where: str) -> None:
    """Refuse a row :func:`preference_rows` could not read, naming ``where``."""
    try:
        preference_rows([row], where, prompt_column)
    except PreforchError as err:  # "<where>: row 1, …" → "<where>, …"
        raise PreforchError(str(err).replace(f"{where}: row 1", where, 1)) from None


def read_rows(job, read_one: Callable[[dict[str, Any], str], Any] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The rows of ``job.data`` for a route: :func:`load_rows` with the job's limit and seed, each row mapped by
    the job's response columns and checked by ``read_one(row, where)`` (the route's own reading of one row).

    ``on_bad_rows: error`` stops at the first row that fails, with its one-line error; ``skip`` sets such rows
    aside into ``<output_dir>.rejected_rows.jsonl`` next to the run folder with their reasons, prints one line
    counting them, and returns the rest.
    """
    rows, source = load_rows(job.data, job.limit, job.seed)
    columns = job.response_columns()

    def one(row: dict[str, Any], where: str) -> dict[str, Any]:
        if not columns.identity:
            row = columns.apply(row, where)
        if read_one is not None:
            read_one(row, where)
        return row

    checks = RowChecks(rows, source, job.on_bad_rows)
    kept = [checks.check(i, one, row, f"{source}: row {i + 1}") for i, row in enumerate(rows)]
    report_rejected(list(checks.bad.values()), len(rows), job.output_dir, source)
    kept = [row for i, row in enumerate(kept) if i not in checks.bad]
    if not kept:
        raise PreforchError(f"{source}: every row was set aside (on_bad_rows: skip); see "
                            f"{rejected_rows_path(job.output_dir)}")
    return kept, source


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
    return [candidates_of(row, columns, f"{source}: row {i}") for i, row in enumerate(rows, 1)]


def candidates_of(row: dict[str, Any], columns: list[str], where: str) -> list[str]:
    """The candidate responses of one row from ``columns`` (each a string or a list of strings); at least two."""
    found: list[str] = []
    for c in columns:
        value = row.get(c)
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            if not isinstance(item, str):  # never str(None) or str(3.5) as a "response"
                raise PreforchError(f"{where}, column {c!r}: expected response text, got {type(item).__name__}")
            found.append(item)
    if len(found) < 2:
        raise PreforchError(f"{where}: {len(found)} candidate response(s) in {columns}, need >= 2")
    return found


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_tokens(prompt: Conversation, tokenizer, chat: bool) -> int:
    """Tokens the policy reads for ``prompt``: its chat template with the generation prompt, or its text."""
    if chat:
        ids = tokenizer.apply_chat_template(prompt.to_messages(), add_generation_prompt=True, tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)
    return len(tokenizer(prompt.text())["input_ids"])


def fit_prompt(prompt: Conversation, tokenizer, max_tokens: int, chat: bool) -> Conversation:
    """``prompt`` cut to at most ``max_tokens`` policy tokens, keeping its end (``max_prompt_length``): the
    earliest messages go first, then the start of the final user turn's text. TRL's trainers do not cut prompts
    themselves, and one long HH dialogue makes a whole batch's logits that long."""
    if prompt_tokens(prompt, tokenizer, chat) <= max_tokens:
        return prompt
    while len(prompt.messages) > 1:
        prompt = Conversation(prompt.messages[1:]) if prompt.messages[1].role != "assistant" else \
            Conversation(prompt.messages[2:])
        if prompt_tokens(prompt, tokenizer, chat) <= max_tokens:
            return prompt
    ids = tokenizer(prompt.last_user, add_special_tokens=False)["input_ids"]
    for _ in range(4):  # decoding and encoding again can shift the count by a token or two
        count = prompt_tokens(prompt, tokenizer, chat)
        if count <= max_tokens:
            return prompt
        over = count - max_tokens
        if over >= len(ids):
            raise PreforchError(f"max_prompt_length {max_tokens} leaves no room for the prompt: the policy's "
                                f"template alone takes about {count - len(ids)} tokens; raise it")
        ids = ids[over:]
        prompt = prompt.with_last_user(tokenizer.decode(ids, skip_special_tokens=True).strip() or "…")
    return prompt


def policy_prompt(prompt: Conversation, chat: bool):
    """What TRL gets as 'prompt': the message list when the tokenizer has a chat template, else the text."""
    return prompt.to_messages() if chat else prompt.text()


def policy_completion(text: str, chat: bool):
    return [{"role": "assistant", "content": text}] if chat else text
