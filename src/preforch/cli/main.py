"""`preforch` entry point: the commands of :data:`preforch.cli.commands.COMMANDS` (one config class each) and the
few with flags of their own (modules with ``add_parser``), in the order `preforch --help` shows them."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import importlib
import logging
import os
import signal
import sys
import threading

from preforch import __version__
from preforch.cli.commands import COMMANDS, GROUPS, CommandGroup, resolve
from preforch.errors import PreforchError

#: The top-level commands in `preforch --help` order: a group or command of the table, or a module with
#: ``add_parser``.
TOP_LEVEL = ["adapter", "preforch.cli.weights_cmd", "evaluate", "score", "rm", "generate", "preforch.cli.models_cmd",
             "serve", "align", "preforch.cli.env_cmd"]
#: Subcommands with flags of their own, added to a group after the table's.
GROUP_MODULES = {"evaluate": "preforch.cli.recipe_cmd"}


class PreforchParser(argparse.ArgumentParser):
    """argparse's parser, but a subcommand given a flag it does not know answers with its own usage and the flags
    it does know that look alike (argparse passes leftovers up, and the top-level usage names no flag of the
    subcommand). Subparsers are made of the same class."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            self.error(unknown_flags_message(self, extras))
        return namespace, extras


def unknown_flags_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """'unrecognized arguments: ...' and, for each unknown flag, the subcommand's flags closest to it."""
    known = [o for action in parser._actions for o in action.option_strings
             if o.startswith("--") and o != "--help"]
    hints = []
    for arg in extras:
        if arg.startswith("-"):
            close = difflib.get_close_matches(arg.split("=", 1)[0], known, n=2, cutoff=0.7)
            if close:
                hints.append(f"{arg.split('=', 1)[0]}: did you mean {' or '.join(close)}?")
    return f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else "")


def build_parser() -> argparse.ArgumentParser:
    parser = PreforchParser(
        prog="preforch",
        description="Prompt-aware multi-objective alignment (PRO, the Preference Orchestrator).",
    )
    parser.add_argument("--version", action="version", version=f"preforch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in TOP_LEVEL:
        if name.startswith("preforch."):
            importlib.import_module(name).add_parser(sub)
        elif name in GROUPS:
            _add_group(sub, GROUPS[name])
        else:
            next(c for c in COMMANDS if c.path == (name,)).add_to(sub)
    return parser


def _add_group(sub, group: CommandGroup) -> None:
    """A command with subcommands: the table's, then a module's (``GROUP_MODULES``)."""
    parser = sub.add_parser(group.name, help=group.help, description=group.description)
    inner = parser.add_subparsers(dest=group.dest, metavar=group.metavar)
    inner.required = True
    for command in COMMANDS:
        if command.path[:-1] == (group.name,):
            command.add_to(inner)
    if group.name in GROUP_MODULES:
        importlib.import_module(GROUP_MODULES[group.name]).add_parser(inner)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; bad input prints one line and returns 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # transformers' per-load "Loading weights" bars drown preforch's own progress bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        with exit_on_termination():
            job = resolve(args.func) if isinstance(args.func, str) else args.func  # "module:function": see commands
            return int(job(args) or 0)
    except PreforchError as err:
        print(f"preforch: error: {err}{producer_hint(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        # any path of any command can hit it, anywhere from checking an output to opening a file in a library
        print(f"preforch: error: {name_too_long(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("preforch: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"preforch: terminated by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


def name_too_long(err: OSError) -> str:
    """One line for ENAMETOOLONG: the path and its longest name in bytes (file systems allow 255 per name)."""
    path = os.fsdecode(err.filename) if err.filename is not None else "a path"
    longest = max((len(os.fsencode(part)) for part in path.split(os.sep)), default=0)
    shown = path if len(path) <= 120 else f"{path[:60]}…{path[-40:]}"
    return f"{shown}: file name too long (a name of {longest} bytes; file systems allow 255 per name)"


#: What the README's commands write, and the command that writes it: a missing input names its maker.
PRODUCERS = {
    "runs/example": "preforch adapter train --config configs/example.yaml",
    "runs/generate/candidates.jsonl": "preforch generate --config configs/generate.yaml --prompts-file "
                                      "configs/prompts.txt",
    "runs/align_conditioned/final": "preforch align conditioned --config configs/align/conditioned.yaml",
}


def producer_hint(message: str) -> str:
    """`` (made by `...`)`` when ``message`` says a README output is missing, else ''."""
    if "not found" not in message and "No such file" not in message:
        return ""
    for path, command in PRODUCERS.items():
        if message.startswith((path + ":", path + "/")) or f"'{path}" in message:
            return f" (made by `{command}`)"
    return ""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while a command ran (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def exit_on_termination():
    """While a command runs, turn SIGTERM and SIGHUP into :class:`Terminated`, so every ``finally`` and
    ``except BaseException`` runs (staging folders and temporary files are removed) as on Ctrl-C; Python's
    default ends the process at once and leaves them behind. Signals set to be ignored stay ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
