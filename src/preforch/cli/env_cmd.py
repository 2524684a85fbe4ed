"""`preforch env`: versions, devices and where the embedded models are, for bug reports."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("env", help="print versions, devices and embedded-model locations",
                       description="Print library versions, devices and where the embedded models are.")
    p.set_defaults(func="preforch.cli.jobs:env")
