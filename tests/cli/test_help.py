"""Every command and subcommand answers --help, and every setting flag carries a help text."""

import argparse

import pytest

from preforch.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


COMMANDS = list(_commands(build_parser()))


def test_expected_commands_exist():
    names = {" ".join(c) for c, _ in COMMANDS}
    assert {"adapter", "adapter train", "weights", "env"} <= names


@pytest.mark.parametrize("command", [c for c, _ in COMMANDS], ids=lambda c: " ".join(c))
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: preforch " + " ".join(command))


@pytest.mark.parametrize("command,parser", COMMANDS, ids=lambda c: " ".join(c) if isinstance(c, tuple) else "")
def test_every_option_is_documented(command, parser):
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            assert action.help and action.help.strip(), f"{' '.join(command)} {action.option_strings} has no help"


def test_env_runs(capsys):
    assert main(["env"]) == 0
    assert "torch" in capsys.readouterr().out
