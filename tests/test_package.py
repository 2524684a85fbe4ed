"""The package imports light and exposes its public names lazily."""

import subprocess
import sys


def test_import_is_light_and_public_names_resolve():
    code = ("import sys, preforch; heavy = [m for m in ('torch', 'trl', 'fastapi', 'matplotlib') if m in sys.modules];"
            "assert not heavy, heavy; from preforch import PreferenceAdapter, Normalizer, load_preference_data;"
            "assert PreferenceAdapter.__name__ == 'PreferenceAdapter'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
