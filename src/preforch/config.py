"""Typed configs: dataclasses with documented fields, filled from YAML, then from command-line flags.

Every config field carries ``metadata={"help": ...}``; :func:`add_config_args` turns the fields into
``--flag`` options with that help, so ``--help`` documents each setting exactly once, and
:func:`build_config` merges defaults < YAML file < flags (as TRL's ``TrlParser`` does).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from preforch.atomic import read_text
from preforch.errors import PreforchError

C = TypeVar("C")


def field(default: Any = dataclasses.MISSING, help: str = "", key_value: bool = False, **kwargs) -> Any:  # noqa: A002
    """A dataclass field with a help text; lists and dicts default through a factory.

    ``key_value``: a mapping whose flag is ``--name KEY=VALUE`` (repeatable, VALUE read as YAML), merged over the
    YAML file's mapping key by key instead of replacing it."""
    metadata = {"help": help, **({"key_value": True} if key_value else {})}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _unwrap_optional(tp) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed): ``list | dict | None`` → (``list | dict``, True)."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        if len(args) < len(get_args(tp)):
            return typing.Union[tuple(args)], True
    return tp, False


def _describe(tp) -> str:
    tp, optional = _unwrap_optional(tp)
    if get_origin(tp) is Literal:
        text = "{" + ",".join(str(a) for a in get_args(tp)) + "}"
    elif get_origin(tp) is list and get_args(tp):
        text = f"list of {_describe(get_args(tp)[0])}"
    elif get_origin(tp) is dict and len(get_args(tp)) == 2:
        text = f"mapping of {_describe(get_args(tp)[0])} to {_describe(get_args(tp)[1])}"
    elif get_origin(tp) in (typing.Union, types.UnionType):
        text = " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    else:
        text = getattr(tp, "__name__", str(tp))
    return text + (" or null" if optional else "")


def _show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def coerce(value: Any, tp, name: str, source: str, strict: bool = False) -> Any:
    """Check (and gently convert) ``value`` against the annotation ``tp``; errors name the setting.

    Text converts to the declared type (flags arrive as text) unless ``strict`` (values read from a saved
    artifact's JSON, which has types of its own); a boolean is never a number and a number never a boolean.
    """
    try:
        if strict:
            _check_strict(value, tp)
        return _coerce(value, tp, name, source)
    except PreforchError:
        raise
    except (TypeError, ValueError, OverflowError, yaml.YAMLError):
        raise PreforchError(f"{source}: setting {name!r} is {_show(value)}, expected {_describe(tp)}") from None


def _check_strict(value: Any, tp) -> None:
    """JSON values keep their own types: text only where the annotation takes text, lists only where it takes
    a list."""
    inner, _ = _unwrap_optional(tp)
    members = get_args(inner) if get_origin(inner) in (typing.Union, types.UnionType) else (inner,)
    takes_text = any(m is str or m is Any or (get_origin(m) is Literal and any(isinstance(c, str) for c in get_args(m)))
                     for m in members)
    if isinstance(value, str) and not takes_text:
        raise ValueError(value)
    for m in members:
        if get_origin(m) is list and isinstance(value, list):
            (item,) = get_args(m) or (Any,)
            for v in value:
                _check_strict(v, item)


def _coerce(value: Any, tp, name: str, source: str) -> Any:
    inner, optional = _unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("null", "none")):
        if optional:
            return None
        raise PreforchError(f"{source}: setting {name!r} may not be null (expected {_describe(tp)})")
    tp = inner
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # e.g. list[float] | dict[str, float]: the first that fits
        if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
            value = yaml.safe_load(value)
        for member in get_args(tp):
            try:
                return _coerce(value, member, name, source)
            except (PreforchError, TypeError, ValueError, OverflowError, yaml.YAMLError):
                continue
        raise ValueError(value)
    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, bool) or value not in choices:
            raise PreforchError(f"{source}: setting {name!r} is {_show(value)}, expected one of {list(choices)}")
        return value
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(value)
        if tp is int and not isinstance(value, int):
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:
                    pass
            number = float(value)
            if not number.is_integer():  # also refuses inf and nan
                raise ValueError(value)
            return int(number)
        return tp(value)
    if tp is str:
        if not isinstance(value, str) or "\x00" in value:  # a NUL byte: no path, name or prompt holds one
            raise ValueError(value)
        return value
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        if isinstance(value, str):  # a flag: YAML flow list "[{type: builtin}]", or "a,b,c" (no empty items)
            value = yaml.safe_load(value) if value.lstrip().startswith("[") else value.split(",") if value else []
            if "" in value:
                raise ValueError(value)
        if not isinstance(value, list):
            raise ValueError(value)
        out = []
        for v in value:
            try:
                out.append(_coerce(v, item, name, source))
            except PreforchError:
                raise
            except (TypeError, ValueError, OverflowError, yaml.YAMLError):
                raise PreforchError(f"{source}: setting {name!r} is {_show(value)}: item {_show(v)} is not "
                                    f"{_describe(item)}") from None
        return out
    if tp is dict or origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ValueError(value)
        return dict(value)
    return value


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"setting {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_MAX_NODES = 100_000  # a config is small; aliases can make a few lines expand to billions of values


def _count_nodes(value: Any, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise OverflowError
    if isinstance(value, dict):
        for item in value.values():
            _count_nodes(item, budget)
    elif isinstance(value, list):
        for item in value:
            _count_nodes(item, budget)


def _yaml_error(err: yaml.YAMLError) -> str:
    """A YAML error as one line: what went wrong and where."""
    problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    context = getattr(err, "context", None)
    return " ".join(f"{context + ': ' if context else ''}{problem}{where}".split())


def read_yaml_mapping(path: str | Path, what: str = "config file", of: str = "settings") -> dict:
    """A UTF-8 YAML file that must hold a mapping; errors are one line naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise PreforchError(f"{path}: {what} not found")
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader) or {}
    except yaml.YAMLError as err:
        raise PreforchError(f"{path}: not valid YAML ({_yaml_error(err)})") from None
    except RecursionError:
        raise PreforchError(f"{path}: not valid YAML (nested too deeply)") from None
    if not isinstance(data, dict):
        raise PreforchError(f"{path}: expected a mapping of {of}, got {type(data).__name__}")
    try:
        _count_nodes(data, [_MAX_NODES])
    except (OverflowError, RecursionError):
        raise PreforchError(f"{path}: too large once its aliases are expanded (over {_MAX_NODES} values); "
                            "a config needs no alias bombs") from None
    return data


def build_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict | None = None) -> C:
    """Defaults < YAML file < ``overrides``. Unknown keys and wrong types are errors that name them."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if yaml_path is not None:
        path = Path(yaml_path)
        data = read_yaml_mapping(path, "config file", "settings")
        unknown = sorted(set(data) - names)
        if unknown:
            raise PreforchError(f"{path}: unknown setting(s) {unknown}; known: {sorted(names)}")
        values.update({k: coerce(v, hints[k], k, str(path)) for k, v in data.items()})
    merged = {f.name for f in dataclasses.fields(cls) if f.metadata.get("key_value")}
    for key, value in (overrides or {}).items():
        if value is not None:
            value = coerce(value, hints[key], key, "command line")
            values[key] = {**values[key], **value} if key in merged and isinstance(values.get(key), dict) else value
    try:
        return cls(**values)
    except TypeError as err:
        raise PreforchError(f"{cls.__name__}: {err}") from None


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                    title: str | None = None) -> None:
    """One ``--flag`` per config field (underscores become dashes); defaults stay None so YAML wins. ``title``:
    the group's heading in --help (default: the class, overriding --config)."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title or f"settings ({cls.__name__}; override --config)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = f"{f.metadata.get('help', '')} [{_describe(hints[f.name])}; default: {default!r}]"
        is_bool = _unwrap_optional(hints[f.name])[0] is bool
        if f.metadata.get("key_value"):
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, metavar="KEY=VALUE",
                               action=_KeyValue, help=text.replace("%", "%%"))
            continue
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                           metavar="BOOL" if is_bool else "V", nargs="?" if is_bool else None,
                           const="true" if is_bool else None, help=text.replace("%", "%%"))


class _KeyValue(argparse.Action):
    """``--name KEY=VALUE`` (repeatable) → {KEY: VALUE read as YAML}; a later KEY replaces an earlier one."""

    def __call__(self, parser, namespace, value, option_string=None):
        key, sep, text = str(value).partition("=")
        if not sep or not key.strip():
            parser.error(f"{option_string}: expected KEY=VALUE, got {value!r}")
        try:
            parsed = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            parsed = text  # not YAML: the text itself
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), key.strip(): parsed})


def overrides_from(args: argparse.Namespace, cls: type) -> dict:
    """The config fields the user set on the command line."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
