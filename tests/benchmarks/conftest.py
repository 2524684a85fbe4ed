"""Fixtures of the benchmark tests: the shared tiny random Llama (tests/tiny_models.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_models import make_tiny_policy


@pytest.fixture(scope="session")
def tiny_policy_path(tmp_path_factory) -> Path:
    return make_tiny_policy(tmp_path_factory.mktemp("bench_tiny_policy"), hidden=32)
