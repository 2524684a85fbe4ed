"""The tracebacks of issue 25's hostile run, each rebuilt: a negative encoder_max_length that passed the checks and
failed after training, file names over 255 bytes, `--hidden 1e8`, and `weights --output` replacing a file."""

from __future__ import annotations

import pytest
from hostile_helpers import RULE_SCORER, cli, one_line_error

from preforch.errors import PreforchError


def train_args(scored_file, encoder_dir, output) -> list:
    return ["adapter", "train", "--data", scored_file, "--output", output, "--encoder-path", encoder_dir,
            "--epochs", "1", "--plot", "false", "--progress", "false", "--cache-embeddings", "false"]


@pytest.mark.parametrize("value", ["-5", "0", "1e9"])
def test_a_bad_encoder_max_length_is_refused_before_any_work(tmp_path, capsys, scored_file, tiny_encoder_dir,
                                                             value):
    line = one_line_error(capsys, *train_args(scored_file, tiny_encoder_dir, tmp_path / "a"), "--hidden", "8",
                          "--encoder-max-length", value, match=r"encoder_max_length=.*expected null or 1\.\.")
    assert value.lstrip("-").split("e")[0] in line
    assert not (tmp_path / "a").exists()


def test_a_bad_encoder_max_length_is_refused_in_the_library_too():
    from preforch.adapter import AdapterConfig

    with pytest.raises(PreforchError, match=r"encoder_max_length=-1 \(expected null or 1\.\."):
        AdapterConfig(encoder_max_length=-1)
    assert AdapterConfig(encoder_max_length=None).encoder_max_length is None


@pytest.mark.parametrize("flag,value,bound", [("--hidden", "1e8", r"hidden=100000000 \(expected 1\.\.8192\)"),
                                              ("--hidden", "0", r"hidden=0 \(expected 1\.\.8192\)"),
                                              ("--layers", "1e6", r"layers=1000000 \(expected 1\.\.64\)")])
def test_an_absurd_mlp_size_is_refused_with_its_bound(tmp_path, capsys, scored_file, tiny_encoder_dir, flag, value,
                                                      bound):
    one_line_error(capsys, *train_args(scored_file, tiny_encoder_dir, tmp_path / "a"), flag, value, match=bound)


def test_an_absurd_reward_head_size_is_refused_with_its_bound(tmp_path, capsys):
    one_line_error(capsys, "rm", "train", "--hidden", "1e8", "--output-dir", tmp_path / "rm",
                   match=r"head 'harmless': hidden 100000000 .*expected hidden in 0\.\.8192")
    assert not (tmp_path / "rm").exists()


def long_name(tmp_path, suffix: str = ""):
    return tmp_path / ("n" * 300 + suffix)


@pytest.mark.parametrize("case", ["adapter-output", "adapter-data", "score-input", "score-output", "weights-adapter",
                                  "weights-output", "weights-prompts-file"])
def test_a_file_name_over_255_bytes_is_one_line(tmp_path, capsys, scored_file, pairs_file, tiny_encoder_dir,
                                                adapter_dir, case):
    argv = {
        "adapter-output": train_args(scored_file, tiny_encoder_dir, long_name(tmp_path)) + ["--hidden", "8"],
        "adapter-data": train_args(long_name(tmp_path, ".jsonl"), tiny_encoder_dir, tmp_path / "a"),
        "score-input": ["score", "--input", long_name(tmp_path, ".jsonl"), "--output", tmp_path / "s.jsonl",
                        "--scorers", RULE_SCORER],
        "score-output": ["score", "--input", pairs_file, "--output", long_name(tmp_path, ".jsonl"), "--scorers",
                         RULE_SCORER],
        "weights-adapter": ["weights", "--adapter", long_name(tmp_path), "hi"],
        "weights-output": ["weights", "--adapter", adapter_dir, "hi", "--output", long_name(tmp_path, ".jsonl")],
        "weights-prompts-file": ["weights", "--adapter", adapter_dir, "--prompts-file", long_name(tmp_path, ".txt")],
    }[case]
    one_line_error(capsys, *argv, match=r"(file name too long \(a name of 30\d bytes; file systems allow 255|"
                                        r"not found)")


def test_weights_output_refuses_an_existing_file_without_overwrite(tmp_path, capsys, adapter_dir):
    out = tmp_path / "weights.jsonl"
    out.write_text("mine\n")
    one_line_error(capsys, "weights", "--adapter", adapter_dir, "hi", "--output", out,
                   match=r"weights\.jsonl: output file exists; pass --overwrite")
    assert out.read_text() == "mine\n"
    rc, _, err = cli(capsys, "weights", "--adapter", adapter_dir, "hi", "--output", out, "--overwrite")
    assert rc == 0, err
    assert '"weights"' in out.read_text()
