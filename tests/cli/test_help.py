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


@pytest.mark.parametrize("argv,usage,hint", [
    (["adapter", "train", "--hiden", "8"], "usage: preforch adapter train", "--hiden: did you mean --hidden?"),
    (["evaluate", "adapter", "--adaptr=x"], "usage: preforch evaluate adapter", "--adaptr: did you mean --adapter"),
    (["serve", "--prot", "80"], "usage: preforch serve", "--prot: did you mean --port"),
    (["weights", "--adapter", "a", "hi", "--outptu", "x"], "usage: preforch weights", "did you mean --output?"),
    (["env", "--zzz"], "usage: preforch env", None),
], ids=["adapter-train", "evaluate-adapter", "serve", "weights", "env-no-match"])
def test_an_unknown_flag_shows_the_subcommands_usage_and_close_matches(capsys, argv, usage, hint):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(usage), err  # not the top-level "usage: preforch [-h] ... COMMAND"
    last = err.strip().splitlines()[-1]
    assert "unrecognized arguments" in last and argv[-1] in last
    assert (hint in last) if hint else ("did you mean" not in last)


@pytest.mark.parametrize("argv,flag,choices", [
    (["rm", "train", "--features", "response,colour"], "features", "response,prompt,product,difference,length"),
    (["rm", "train", "--lora-targets", "query,attn"], "lora_targets", "query,key,value,dense"),
    (["adapter", "train", "--train-views", "context,middle"], "train_views", "last_user,context"),
    (["generate", "--prompts", "hi", "--fallback", "sometimes"], "fallback", "off,on,uniform"),
], ids=["rm-features", "rm-lora-targets", "adapter-train-views", "generate-fallback"])
def test_a_setting_of_fixed_choices_names_them_in_help_and_error(capsys, argv, flag, choices):
    """Settings typed Literal (or lists of one): --help lists the choices, a value outside them is one error line
    that lists them too."""
    command = argv[:1] if argv[0] == "generate" else argv[:2]
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert "{" + choices + "}" in " ".join(capsys.readouterr().out.split())
    assert main(argv) == 2
    err = capsys.readouterr().err
    bad = argv[-1].split(",")[-1]
    assert f"setting {flag!r} is {bad!r}, expected " in err
    assert str(choices.split(",")) in err or "{" + choices + "}" in err
