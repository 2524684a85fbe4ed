"""Jobs: each reads files, calls the components and writes its artifacts (score, adapter train, rm train, align
routes, generate, evaluate, the paper recipes). Components below work on objects and tensors; the command line
above builds a job's config and runs it."""

import sys


def next_step(*commands: str, file=None) -> None:
    """Print the natural next command(s) after a job (each recipe's ``run``, the command line's job)."""
    for command in commands:
        print(f"next: {command}", file=file or sys.stdout)
