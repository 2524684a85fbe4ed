"""The one internal form of a prompt: a conversation, a list of ``{role, content}`` messages ending with a
user turn.

Every input shape is parsed into a :class:`Conversation` where data enters (loaders, the CLI, the server):
plain prompt text, a ``messages`` list, TRL conversational columns, and Anthropic HH dialogue text
(``"\\n\\nHuman: …\\n\\nAssistant: …"``). Nothing downstream sees a data set's own markup; components that need
text render a conversation themselves (the adapter through its prompt view, scorers through their template).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from preforch.errors import PreforchError

ROLES = ("system", "user", "assistant", "tool")  # a tool turn (a function's result) is context, never the last
#: Roles other APIs use for the same thing (OpenAI's "developer" is a system turn; HH's "Human" a user turn).
ROLE_ALIASES = {"developer": "system", "human": "user", "Human": "user", "Assistant": "assistant"}
HH_ASSISTANT = "\n\nAssistant:"
_HH_TURN = re.compile(r"\r?\n\r?\n(Human|Assistant):")  # CRLF text has the same markers
#: A user turn written inline in an assistant turn: "Human:" (or "Humans:") after text and a line break or two
#: spaces ("…kings.  Human: Then…"), never a word in a sentence ("To Sell is Human: …").
_HH_INLINE_USER = re.compile(r"(?<=\S)(?:[ \t]*\n\s*|[ \t]{2,}\(?)Humans?:")
#: Role labels of the canonical text rendering (:meth:`Conversation.text`).
TEXT_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """Messages ending with a user turn (optionally after a system turn and earlier exchanges).

    Hashable and comparable, so it can key caches and split data by prompt. Build one with
    :func:`as_conversation` (any accepted shape) or :meth:`from_text`.
    """

    messages: tuple[Message, ...]

    def __post_init__(self) -> None:
        if not self.messages:
            raise PreforchError("a conversation needs at least one message")
        for m in self.messages:
            if m.role not in ROLES:
                raise PreforchError(f"message role {m.role!r}: expected one of {list(ROLES)}")
            if not isinstance(m.content, str):
                raise PreforchError(f"message content must be text, got {type(m.content).__name__}")
        if self.messages[-1].role != "user":
            raise PreforchError(f"a prompt conversation must end with a user turn, got {self.messages[-1].role!r}")
        if not self.messages[-1].content.strip():
            raise PreforchError("the last user turn is empty")

    @classmethod
    def from_text(cls, text: str) -> Conversation:
        """One user turn."""
        return cls((Message("user", text),))

    @property
    def last_user(self) -> str:
        """The text of the final user turn (what the reply must answer)."""
        return self.messages[-1].content

    @property
    def turns(self) -> int:
        """Number of user turns."""
        return sum(m.role == "user" for m in self.messages)

    @property
    def context(self) -> tuple[Message, ...]:
        """Every message before the final user turn."""
        return self.messages[:-1]

    def to_messages(self) -> list[dict[str, str]]:
        """As a list of ``{"role", "content"}`` dicts (chat templates, TRL conversational rows, JSON)."""
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def key(self) -> str:
        """A canonical string identity (JSON of the messages): equal conversations have equal keys."""
        return json.dumps([[m.role, m.content] for m in self.messages], ensure_ascii=False, separators=(",", ":"))

    def text(self) -> str:
        """Canonical text: a single user turn is its text; otherwise one ``Role: content`` block per turn.

        The same rendering for every data source, so it never tells where a conversation came from.
        """
        if len(self.messages) == 1:
            return self.last_user
        return "\n\n".join(f"{TEXT_LABELS[m.role]}: {m.content}" for m in self.messages)

    def with_last_user(self, content: str) -> Conversation:
        """The same conversation with the final user turn's text replaced."""
        return Conversation((*self.context, Message("user", content)))

    def __str__(self) -> str:
        return self.text()


def is_hh_dialogue(text: str) -> bool:
    """Anthropic HH markup: starts with a ``Human:`` turn (after optional blank lines, LF or CRLF)."""
    return text.lstrip("\r\n").startswith("Human:")


def _hh_turns(dialogue: str, keep_empty_reply: bool) -> list[tuple[Message, bool]]:
    """HH text → its turns as read, each with whether it was a user turn written inline in an assistant turn."""
    text = "\n\n" + dialogue.lstrip("\r\n")
    parts = _HH_TURN.split(text)
    # parts: [before the first turn, role, content, role, content, ...]
    if parts[0].strip():
        raise PreforchError("HH dialogue: text before the first 'Human:' turn")
    raw = [("user" if name == "Human" else "assistant", content) for name, content in zip(parts[1::2], parts[2::2])]
    # The prompt's generation marker goes first, so that it is never merged into the turn before it.
    marker = bool(raw) and raw[-1][0] == "assistant" and not raw[-1][1].strip() and not keep_empty_reply
    if marker:
        raw.pop()
    turns: list[tuple[Message, bool]] = []
    for i, (role, content) in enumerate(raw):
        # An assistant turn followed by another one (or by the generation marker) that holds an inline
        # "  Human: …" is a model that went on to write the user's part: read it as the turns it writes.
        runs_on = role == "assistant" and (raw[i + 1][0] == "assistant" if i + 1 < len(raw) else marker)
        pieces = _HH_INLINE_USER.split(content) if runs_on else [content]
        for j, piece in enumerate(pieces):
            inline = j > 0
            message = Message("user" if inline else role, piece.strip())
            if turns and turns[-1][0].role == message.role:  # a repeated marker: one turn, as written
                previous, was_inline = turns[-1]
                turns[-1] = (Message(message.role, f"{previous.content}\n\n{message.content}".strip()), was_inline)
            else:
                turns.append((message, inline))
    return turns


def parse_hh(dialogue: str, keep_empty_reply: bool = False) -> list[Message]:
    """HH dialogue text → its messages, in order, the way the dialogue reads.

    An ending ``Assistant:`` with no text is the prompt's generation marker and is dropped before anything else
    (unless ``keep_empty_reply``: a whole dialogue whose reply is empty). Consecutive turns of one speaker are
    joined, except that an assistant turn followed by another assistant turn or by the generation marker is first
    split at user turns written inline (``"…  Human: …"``, a model writing the user's part itself). Markers
    after CRLF line ends count as well."""
    return [message for message, _ in _hh_turns(dialogue, keep_empty_reply)]


def _split_last(turns: list[tuple[Message, bool]]) -> int:
    """Index of the final assistant turn that a whole dialogue's reply is, after a prompt ending with a user turn."""
    if len(turns) < 2 or turns[-1][0].role != "assistant":
        raise PreforchError("HH dialogue: no final 'Assistant:' reply")
    return len(turns) - 1


def split_hh(dialogue: str) -> tuple[Conversation, str]:
    """A whole HH dialogue → (the conversation before the last assistant turn, the last assistant reply)."""
    turns = _hh_turns(dialogue, keep_empty_reply=True)
    last = _split_last(turns)
    return Conversation(tuple(m for m, _ in turns[:last])), turns[last][0].content


def split_hh_pair(chosen: str, rejected: str) -> tuple[Conversation, str, str]:
    """Two whole HH dialogues of one prompt → (the prompt, chosen reply, rejected reply).

    Where one reply ran on into user turns it wrote inline (``"b  Human: c\\n\\nAssistant: d"``), the pair's
    prompt is the one the other dialogue has, and that reply is its text up to the inline turn (``"b"``).
    Dialogues that differ before the reply otherwise are an error."""
    sides = [_hh_turns(text, keep_empty_reply=True) for text in (chosen, rejected)]
    cuts = [_split_last(turns) for turns in sides]
    prompts = [[m for m, _ in turns[:cut]] for turns, cut in zip(sides, cuts)]
    if prompts[0] == prompts[1]:
        return Conversation(tuple(prompts[0])), sides[0][cuts[0]][0].content, sides[1][cuts[1]][0].content
    short = 0 if cuts[0] < cuts[1] else 1
    longer, n = sides[1 - short], cuts[short]
    ran_on = [m for m, _ in longer[:n]] == prompts[short] and longer[n][0].role == "assistant" and longer[n + 1][1]
    if not ran_on:
        raise PreforchError("the 'chosen' and 'rejected' dialogues differ before the last assistant turn")
    replies = [sides[short][cuts[short]][0].content] * 2
    replies[1 - short] = longer[n][0].content
    return Conversation(tuple(prompts[short])), replies[0], replies[1]


def split_hh_prompt(prompt: str) -> tuple[Conversation, str]:
    """An HH prompt cell (``"…\\n\\nAssistant:"``, the split prompt/response layout) → (the conversation, the
    assistant text it already holds after the last user turn, usually ""). Rows split at the last
    ``\\n\\nAssistant:`` of a dialogue whose reply spans two assistant turns carry the first in the prompt: it is
    the start of the reply, so the loader puts it back in front of each response."""
    messages = parse_hh(prompt)
    lead = ""
    if len(messages) > 1 and messages[-1].role == "assistant":
        lead = messages.pop().content
    return Conversation(tuple(messages)), lead


def _messages(value: Sequence[Any], where: str) -> list[Message]:
    out = []
    for i, m in enumerate(value, 1):
        if isinstance(m, Message):
            out.append(m)
            continue
        if not isinstance(m, dict) or "role" not in m:
            raise PreforchError(f"{where}: message {i} is {type(m).__name__}, expected a {{'role', 'content'}} mapping")
        role = ROLE_ALIASES.get(m["role"], m["role"])
        if role not in ROLES:
            raise PreforchError(f"{where}: message {i} has role {m['role']!r}, expected one of {list(ROLES)}")
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content is None:
            content = ""
        if role == "assistant" and m.get("tool_calls") and not content:  # TRL tool-use rows: the call is the turn
            content = json.dumps(m["tool_calls"], ensure_ascii=False, sort_keys=True, default=str)
        if not isinstance(content, str):
            raise PreforchError(f"{where}: message {i} content is {type(content).__name__}, expected text")
        out.append(Message(role, content))
    return out


def as_conversation(value: Any, where: str = "prompt") -> Conversation:
    """Parse any accepted prompt shape; errors name ``where``.

    Accepted: a :class:`Conversation`; plain text (one user turn); HH dialogue text (``Human: …``, an ending
    ``Assistant:`` prompt marker allowed); a list of ``{role, content}`` messages ending with a user turn.
    """
    if isinstance(value, Conversation):
        return value
    try:
        if isinstance(value, str):
            if not value.strip():
                raise PreforchError("empty prompt")
            if is_hh_dialogue(value):
                return Conversation(tuple(parse_hh(value)))
            return Conversation.from_text(value)
        if isinstance(value, (list, tuple)):
            return Conversation(tuple(_messages(value, where)))
    except PreforchError as err:
        message = str(err)
        raise PreforchError(message if message.startswith(where) else f"{where}: {message}") from None
    raise PreforchError(f"{where}: expected prompt text or a list of messages, got {type(value).__name__}")


def as_conversations(values: Iterable[Any], what: str = "prompt") -> list[Conversation]:
    """:func:`as_conversation` over a list; errors name the 1-based position."""
    if isinstance(values, (str, Conversation)):
        raise PreforchError(f"expected a list of {what}s, got a single {type(values).__name__}")
    return [as_conversation(v, f"{what} {i}") for i, v in enumerate(values, 1)]


def reply_text(value: Sequence[Any], where: str) -> str:
    """The reply of a message list that ends with the assistant's turn (TRL conversational 'chosen' cells)."""
    messages = _messages(value, where)
    if not messages or messages[-1].role != "assistant":
        last = messages[-1].role if messages else None
        raise PreforchError(f"{where}: the last message must be the assistant's reply, got {last!r}")
    return messages[-1].content


def split_messages(value: Sequence[Any], where: str) -> tuple[Conversation, str]:
    """A message list ending with the assistant's reply → (the conversation before it, the reply)."""
    messages = _messages(value, where)
    if not messages or messages[-1].role != "assistant":
        last = messages[-1].role if messages else None
        raise PreforchError(f"{where}: the last message must be the assistant's reply, got {last!r}")
    try:
        return Conversation(tuple(messages[:-1])), messages[-1].content
    except PreforchError as err:
        raise PreforchError(f"{where}: {err}") from None


def from_key(key: str) -> Conversation:
    """The inverse of :meth:`Conversation.key`."""
    return Conversation(tuple(Message(role, content) for role, content in json.loads(key)))
