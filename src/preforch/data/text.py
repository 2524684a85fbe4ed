"""Text checks shared by the data readers: JSON parsing with one-line errors, and refusing lone surrogates."""

from __future__ import annotations

import json
import re
from typing import Any

from preforch.errors import PreforchError

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape that may decode to a lone surrogate


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


