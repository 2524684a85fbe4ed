"""`preforch serve`: help, settings and refusals before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from preforch.cli.main import main
from preforch.config import build_config
from preforch.errors import PreforchError
from preforch.serve.config import ServeConfig

ROOT = Path(__file__).resolve().parents[2]


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--config", "--host", "--adapter", "--policy", "--max-best-of", "--max-tokens", "--strategy",
                 "--api-key-env", "--api-key-file", "--cors-origins", "--max-body-bytes", "--max-messages",
                 "--batching", "--batch-window-ms", "--conditioning", "--prefill-reuse", "--playground"):
        assert flag in out
    assert "127.0.0.1" in out


@pytest.mark.parametrize("name", ["serve.yaml", "tiny/serve.yaml"])
def test_shipped_configs_are_valid(name):
    config = build_config(ServeConfig, ROOT / "configs" / name)
    assert config.host == "127.0.0.1"
    assert config.adapter


def test_missing_adapter_is_a_one_line_error(capsys):
    assert main(["serve"]) == 2
    assert "'adapter' is required" in capsys.readouterr().err


@pytest.mark.parametrize("overrides, word", [
    ({"best_of": 9}, "max_best_of"),
    ({"default_max_tokens": 300}, "max_tokens"),
    ({"max_batch": 0}, "max_batch"),
    ({"temperature": 3.0}, "temperature"),
    ({"strategy": "best_of_n", "scorers": []}, "needs scorers"),
    ({"max_body_bytes": 0}, "max_body_bytes"),
    ({"batch_window_ms": -1.0}, "batch_window_ms"),
    ({"cors_origins": ["evil.example"]}, "cors_origins"),
])
def test_bad_settings(overrides, word):
    with pytest.raises(PreforchError, match=word):
        ServeConfig(adapter="x", **overrides)


def test_flags_override_yaml(tmp_path):
    from preforch.cli.main import build_parser
    from preforch.config import overrides_from

    path = tmp_path / "s.yaml"
    path.write_text("adapter: a\nport: 9000\npolicy: p\n")
    args = build_parser().parse_args(["serve", "--config", str(path), "--port", "9100", "--policy", "null"])
    config = build_config(ServeConfig, args.config, overrides_from(args, ServeConfig))
    assert (config.port, config.policy, config.adapter) == (9100, None, "a")
