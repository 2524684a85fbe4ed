"""Hostile YAML configs and setting values: one line naming the file (and line) or the setting, before any
work; a property test feeds random values to every config's schema."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hostile_helpers import one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preforch.config import build_config
from preforch.errors import PreforchError

# nine lines that expand to 9**9 values (anchors hidden in scorer specs, which take any mapping)
ALIAS_BOMB = "scorers:\n  - {type: rule, a: &a [x, x, x, x, x, x, x, x, x]}\n" + "".join(
    f"  - {{type: rule, {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]}}\n" for i in range(8)
) + "train_views: *i\n"

# name, YAML bytes, regular expression the one-line error must match
BAD_YAML = [
    ("not-utf8", b"epochs: 3\nlr: caf\xe9\n", r"config\.yaml: line 2 .*UTF-8"),
    ("syntax", b"epochs: [1, 2\nlr: 3\n", r"config\.yaml: not valid YAML.*line \d+"),
    ("tab-indent", b"epochs:\n\t- 1\n", r"config\.yaml: not valid YAML.*line \d+"),
    ("python-tag", b"epochs: !!python/object/apply:os.system ['echo pwned']\n", r"config\.yaml: not valid YAML"),
    ("a-list", b"- 1\n- 2\n", r"config\.yaml: expected a mapping of settings, got list"),
    ("a-scalar", b"hello\n", r"config\.yaml: expected a mapping of settings, got str"),
    ("unknown-key", b"epochz: 3\n", r"config\.yaml: unknown setting\(s\) \['epochz'\]"),
    ("duplicate-key", b"epochs: 1\nlr: 0.1\nepochs: 50\n", r"config\.yaml: not valid YAML.*'epochs' is given twice.*line 3"),
    ("int-text", b"epochs: abc\n", r"config\.yaml: setting 'epochs' is 'abc', expected int"),
    ("int-bool", b"epochs: true\n", r"config\.yaml: setting 'epochs' is True, expected int"),
    ("float-bool", b"lr: yes\n", r"config\.yaml: setting 'lr' is True, expected float"),
    ("int-infinite", b"epochs: .inf\n", r"config\.yaml: setting 'epochs' is inf, expected int"),
    ("int-fraction", b"epochs: 1.5\n", r"config\.yaml: setting 'epochs' is 1.5, expected int"),
    ("int-null", b"epochs: null\n", r"config\.yaml: setting 'epochs' may not be null"),
    ("float-nan", b"lr: .nan\n", r"lr=nan"),
    ("str-number", b"data: 123\n", r"config\.yaml: setting 'data' is 123, expected str"),
    ("str-list", b"output: [a, b]\n", r"config\.yaml: setting 'output' is \['a', 'b'\], expected str"),
    ("literal-bad", b"loss: hinge\n", r"config\.yaml: setting 'loss' is 'hinge', expected one of"),
    ("list-dict-bad", b"scorers: [1, 2]\n", r"config\.yaml: setting 'scorers' is \[1, 2\]: item 1 is not dict"),
    ("optional-float-text", b"norm_clip: abc\n", r"config\.yaml: setting 'norm_clip' is 'abc', expected float or null"),
    ("negative-tau", b"tau: -1\n", r"tau=-1"),
    ("alias-bomb", ALIAS_BOMB.encode(), r"config\.yaml: .*(alias|large)"),
]


@pytest.mark.parametrize("name,content,match", BAD_YAML, ids=[c[0] for c in BAD_YAML])
def test_bad_yaml_config(tmp_path, capsys, monkeypatch, name, content, match):
    from preforch.recipes import adapter_train as job

    monkeypatch.setattr(job, "load_job_data", lambda *a, **k: pytest.fail("work started before the config was checked"))
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    one_line_error(capsys, "adapter", "train", "--config", path, "--output", tmp_path / "out", match=match)


@pytest.mark.parametrize("flag,value,match", [
    ("--epochs", "abc", r"command line: setting 'epochs' is 'abc', expected int"),
    ("--epochs", "1e999", r"command line: setting 'epochs' is '1e999', expected int"),
    ("--overwrite", "maybe", r"command line: setting 'overwrite' is 'maybe', expected bool"),
    ("--norm-clip", "nan", r"norm_clip"),
    ("--train-views", "[a, b", r"command line: setting 'train_views'"),
], ids=["int-text", "int-overflow", "bool-text", "clip-nan", "list-unclosed"])
def test_bad_flag_value(tmp_path, capsys, monkeypatch, flag, value, match):
    from preforch.recipes import adapter_train as job

    monkeypatch.setattr(job, "load_job_data", lambda *a, **k: pytest.fail("work started before the config was checked"))
    one_line_error(capsys, "adapter", "train", flag, value, "--output", tmp_path / "out", match=match)


def test_config_path_is_a_folder(tmp_path, capsys):
    one_line_error(capsys, "adapter", "train", "--config", tmp_path, match=r"config file not found")


def test_yaml_with_byte_order_mark_reads(tmp_path):
    from preforch.recipes.adapter_train import TrainAdapterJob

    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xef\xbb\xbfepochs: 7\n")
    assert build_config(TrainAdapterJob, path).epochs == 7


def test_recipe_yaml_not_utf8(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"score:\n  input: caf\xe9.jsonl\n")
    one_line_error(capsys, "evaluate", "recipe", "--config", path, match=r"recipe\.yaml: line 2 .*UTF-8")


# ---- property: every config schema takes any YAML value or refuses it in one line ---------------------------


def _config_classes():
    from preforch.align.config import DPOJob, GRPOJob
    from preforch.recipes.adapter_train import TrainAdapterJob
    from preforch.recipes.evaluate import EvaluateAdapterConfig, EvaluateResponsesConfig
    from preforch.recipes.generate import GenerateJobConfig
    from preforch.recipes.rm_train import RMTrainConfig
    from preforch.recipes.score import ScoreConfig

    return [TrainAdapterJob, ScoreConfig, RMTrainConfig, GenerateJobConfig, GRPOJob, DPOJob, EvaluateAdapterConfig,
            EvaluateResponsesConfig]


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
              st.sampled_from(["null", "true", "[1, 2", "{a: 1}", "1e999", "-0", "auto", "cpu"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_config_values(tmp_path_factory, data):
    import yaml

    cls = data.draw(st.sampled_from(_config_classes()))
    names = [f.name for f in dataclasses.fields(cls)]
    values = data.draw(st.dictionaries(st.sampled_from(names), YAML_VALUES, min_size=1, max_size=3))
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    try:
        config = build_config(cls, path)
    except PreforchError as err:
        assert "\n" not in str(err), str(err)
        return
    hints = typing.get_type_hints(cls)
    for name in values:  # what was accepted has the declared type (no bool for a number, no text for a list)
        value = getattr(config, name)
        tp = hints[name]
        if tp in (int, float):
            assert isinstance(value, tp) and not isinstance(value, bool), (name, value)
        if tp is str:
            assert isinstance(value, str), (name, value)


def test_nul_byte_in_a_path_setting(tmp_path, capsys, monkeypatch):
    """Path('a\\x00b').exists() raises ValueError: a NUL byte in a text setting is refused when read."""
    from preforch.recipes import adapter_train as job

    monkeypatch.setattr(job, "load_job_data", lambda *a, **k: pytest.fail("work started before the config was checked"))
    path = tmp_path / "config.yaml"
    path.write_text('data: "data\\0.jsonl"\n')
    one_line_error(capsys, "adapter", "train", "--config", path, "--output", tmp_path / "out",
                   match=r"config\.yaml: setting 'data' is 'data\\x00\.jsonl', expected str")


def test_nul_byte_in_a_scorer_path(tmp_path, capsys, pairs_file):
    path = tmp_path / "score.yaml"
    path.write_text('scorers: [{type: hf, path: "rm\\0dir"}]\n')
    one_line_error(capsys, "score", "--config", path, "--input", pairs_file, "--output", tmp_path / "o.jsonl",
                   match=r"setting 'path'")


def test_null_for_a_setting_of_several_types_or_none(tmp_path):
    from dataclasses import dataclass

    from preforch.config import build_config, field

    @dataclass
    class Settings:
        weights: list[float] | dict[str, float] | None = field([1.0], help="weights")

    path = tmp_path / "s.yaml"
    path.write_text("weights: null\n")
    assert build_config(Settings, path).weights is None
    path.write_text("weights: {a: 1}\n")
    assert build_config(Settings, path).weights == {"a": 1.0}
    assert build_config(Settings, None, {"weights": "null"}).weights is None
