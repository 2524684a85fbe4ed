"""The package's layers hold: import-linter's contracts of pyproject.toml (no import runs back up the layers, trl and
peft only under preforch.align, fastapi only under preforch.serve; imports inside functions count), and the command
line imports light."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    found = Path(sys.executable).with_name("lint-imports")
    return str(found) if found.is_file() else (shutil.which("lint-imports") or "")


def test_import_contracts_are_kept():
    command = _lint_imports()
    if not command:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([command, str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout, out.stdout[-4000:]


def test_the_command_line_imports_light():
    code = ("import preforch.cli.main, sys; heavy = {'torch', 'transformers', 'trl', 'fastapi'} & set(sys.modules); "
            "assert not heavy, heavy; preforch.cli.main.build_parser(); "
            "heavy = {'torch', 'transformers', 'trl', 'fastapi'} & set(sys.modules); assert not heavy, heavy; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
