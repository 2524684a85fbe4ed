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

from preforch.errors import PreforchError

C = TypeVar("C")


def field(default: Any = dataclasses.MISSING, help: str = "", **kwargs) -> Any:  # noqa: A002
    """A dataclass field with a help text; lists and dicts default through a factory."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _unwrap_optional(tp) -> tuple[Any, bool]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _describe(tp) -> str:
    tp, optional = _unwrap_optional(tp)
    if get_origin(tp) is Literal:
        text = "{" + ",".join(str(a) for a in get_args(tp)) + "}"
    elif get_origin(tp) in (typing.Union, types.UnionType):
        text = " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    else:
        text = getattr(tp, "__name__", str(tp))
    return text + (" or null" if optional else "")


def coerce(value: Any, tp, name: str, source: str) -> Any:
    """Check (and gently convert) ``value`` against the annotation ``tp``; errors name the setting."""
    tp, optional = _unwrap_optional(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none") and optional):
        if optional:
            return None
        raise PreforchError(f"{source}: setting {name!r} may not be null (expected {_describe(tp)})")
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # e.g. list[float] | dict[str, float]: the first that fits
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.lstrip().startswith(("[", "{")) else value
            except yaml.YAMLError:
                raise PreforchError(f"{source}: setting {name!r} is {value!r}, expected {_describe(tp)}") from None
        for member in get_args(tp):
            try:
                return coerce(value, member, name, source)
            except PreforchError:
                continue
        raise PreforchError(f"{source}: setting {name!r} is {value!r}, expected {_describe(tp)}")
    try:
        if origin is Literal:
            choices = get_args(tp)
            if value not in choices:
                raise PreforchError(f"{source}: setting {name!r} is {value!r}, expected one of {list(choices)}")
            return value
        if tp is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if tp is str and not isinstance(value, str):
                raise ValueError(value)
            return tp(value)
        if origin is list:
            (inner,) = get_args(tp) or (Any,)
            if isinstance(value, str):  # a flag: YAML flow list "[{type: builtin}]", or "a,b,c"
                value = yaml.safe_load(value) if value.lstrip().startswith("[") else [v for v in value.split(",") if v]
            if not isinstance(value, list):
                raise ValueError(value)
            return [coerce(v, inner, name, source) for v in value]
        if tp is dict or origin is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except PreforchError:
        raise
    except (TypeError, ValueError, yaml.YAMLError):
        raise PreforchError(f"{source}: setting {name!r} is {value!r}, expected {_describe(tp)}") from None
    return value


def read_yaml_mapping(path: str | Path, what: str = "config file", of: str = "settings") -> dict:
    """A YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise PreforchError(f"{path}: {what} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise PreforchError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise PreforchError(f"{path}: expected a mapping of {of}, got {type(data).__name__}")
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
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = coerce(value, hints[key], key, "command line")
    try:
        return cls(**values)
    except TypeError as err:
        raise PreforchError(f"{cls.__name__}: {err}") from None


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per config field (underscores become dashes); defaults stay None so YAML wins."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"settings ({cls.__name__}; override --config)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = f"{f.metadata.get('help', '')} [{_describe(hints[f.name])}; default: {default!r}]"
        is_bool = _unwrap_optional(hints[f.name])[0] is bool
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                           metavar="BOOL" if is_bool else "V", nargs="?" if is_bool else None,
                           const="true" if is_bool else None, help=text.replace("%", "%%"))


def overrides_from(args: argparse.Namespace, cls: type) -> dict:
    """The config fields the user set on the command line."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
