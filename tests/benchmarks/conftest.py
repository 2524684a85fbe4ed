"""Fixtures of the benchmark tests: the tiny random Llama of tests/models (loaded by file path, since the test
folders are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _models_conftest():
    spec = importlib.util.spec_from_file_location("_models_conftest", HERE.parent / "models" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_policy_path(tmp_path_factory) -> Path:
    return _models_conftest().make_tiny_policy(tmp_path_factory.mktemp("bench_tiny_policy"))
