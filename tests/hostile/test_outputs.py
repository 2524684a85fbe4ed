"""Hostile outputs (issue 12): every command that writes checks its output path before any work; artifacts
appear whole or not at all, with the usual permissions; a kill, an interrupt or SIGTERM leaves nothing
half-written, and what a killed run left is cleaned up by the next one."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_helpers import RULE_SCORER, cli, no_leftovers, one_line_error, scored_rows, write_jsonl

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _fail(*args, **kwargs):
    pytest.fail("work started before the output was checked")


@pytest.fixture()
def inputs(tmp_path, adapter_master, tiny_encoder_dir):
    scored = write_jsonl(tmp_path / "scored.jsonl", scored_rows())
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 3)
    responses = write_jsonl(tmp_path / "responses.jsonl", [
        {"prompt": f"p{i % 2}", "response": "r", "score.helpful": i, "score.harmless": 1, "score.concise": 2}
        for i in range(4)])
    (tmp_path / "a_file.txt").write_text("not a folder")
    (tmp_path / "a_folder.jsonl").mkdir()
    return {"scored": scored, "pairs": pairs, "responses": responses, "adapter": adapter_master,
            "encoder": tiny_encoder_dir}


# command → (argv builder given the output, output kind, what to stop if the check came too late)
COMMANDS = {
    "score": (lambda i, o: ["score", "--input", i["pairs"], "--output", o, "--scorers", RULE_SCORER, "--cache", "false"],
              "file", [("preforch.recipes.score", "read_table")]),
    "adapter-train": (lambda i, o: ["adapter", "train", "--data", i["scored"], "--output", o, "--encoder-path",
                                    i["encoder"]], "folder", [("preforch.recipes.adapter_train", "load_job_data")]),
    "rm-train": (lambda i, o: ["rm", "train", "--data", i["pairs"], "--output-dir", o],
                 "folder", [("preforch.recipes.rm_train", "load_pairs")]),
    "evaluate-adapter": (lambda i, o: ["evaluate", "adapter", "--adapter", i["adapter"], "--data", i["scored"],
                                       "--output-dir", o], "folder",
                         [("preforch.recipes.evaluate", "read_preference_file")]),
    "evaluate-responses": (lambda i, o: ["evaluate", "responses", "--responses", i["responses"], "--output-dir", o],
                           "folder", [("preforch.recipes.evaluate", "load_responses")]),
    "generate": (lambda i, o: ["generate", "--prompts", "hi", "--output", o], "file",
                 [("preforch.recipes.generate", "read_prompts")]),
    "weights": (lambda i, o: ["weights", "--adapter", i["adapter"], "hi", "--output", o], "file",
                [("preforch.cli.weights_cmd", "read_conversations")]),
    "align-grpo": (lambda i, o: ["align", "grpo", "--adapter", i["adapter"], "--output-dir", o], "folder",
                   [("preforch.align.grpo", "load_parts")]),  # where run_rl looks the name up
}
BAD_OUTPUTS = {
    "root": (lambda tmp, kind: "/", r"(file-system root|must end in|must be a \.jsonl)"),
    "proc": (lambda tmp, kind: f"/proc/preforch-out{'.jsonl' if kind == 'file' else ''}",
             r"cannot create files in /proc"),
    "wrong-kind": (lambda tmp, kind: tmp / ("a_folder.jsonl" if kind == "file" else "a_file.txt"),
                   r"(is a folder; give a file name|exists and is not a folder)"),
    "under-a-file": (lambda tmp, kind: tmp / "a_file.txt" / f"out{'.jsonl' if kind == 'file' else ''}",
                     r"a_file\.txt is not a folder"),
}


@pytest.mark.parametrize("bad", list(BAD_OUTPUTS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_is_checked_before_work(tmp_path, capsys, monkeypatch, inputs, command, bad):
    import importlib

    build, kind, stops = COMMANDS[command]
    for module, name in stops:
        monkeypatch.setattr(importlib.import_module(module), name, _fail)
    where, match = BAD_OUTPUTS[bad]
    overwrite = [] if command == "weights" else ["--overwrite", "true"]  # so "exists" is not what stops it
    one_line_error(capsys, *build(inputs, where(tmp_path, kind)), *overwrite, match=match)
    assert (tmp_path / "a_file.txt").read_text() == "not a folder"
    assert not no_leftovers(tmp_path)


# ---- formats and permissions ---------------------------------------------------------------------------------


def test_score_jsonl_gz_output_is_gzip_and_reads_back(tmp_path, capsys, pairs_file):
    from preforch.data.load import read_table

    out = tmp_path / "scored.jsonl.gz"
    rc, _, err = cli(capsys, "score", "--input", pairs_file, "--output", out, "--scorers", RULE_SCORER, "--cache",
                     "false", "--progress", "false")
    assert rc == 0, err
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    rows = [json.loads(line) for line in gzip.decompress(out.read_bytes()).decode().splitlines()]
    assert len(rows) == 4 and "score.concise" in rows[0]
    assert read_table(out) == rows


def test_score_parquet_gz_output_is_refused_up_front(tmp_path, capsys, pairs_file, monkeypatch):
    from preforch.recipes import score

    monkeypatch.setattr(score, "read_table", _fail)
    one_line_error(capsys, "score", "--input", pairs_file, "--output", tmp_path / "x.parquet.gz", "--scorers",
                   RULE_SCORER, match=r"x\.parquet\.gz: output must end in \.jsonl or \.parquet \(or \.jsonl\.gz")


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()}


@pytest.fixture()
def umask027():
    old = os.umask(0o027)
    yield
    os.umask(old)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_score_output_has_the_usual_permissions(tmp_path, capsys, pairs_file, umask027, suffix):
    out = tmp_path / f"scored{suffix}"
    rc, _, err = cli(capsys, "score", "--input", pairs_file, "--output", out, "--scorers", RULE_SCORER, "--cache",
                     "false", "--progress", "false")
    assert rc == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_adapter_folder_has_the_usual_permissions(tmp_path, capsys, scored_file, tiny_encoder_dir, umask027):
    out = tmp_path / "adapter"
    rc, _, err = cli(capsys, "adapter", "train", "--data", scored_file, "--output", out, "--encoder-path",
                     tiny_encoder_dir, "--epochs", "2", "--hidden", "8", "--plot", "false", "--progress", "false",
                     "--cache-embeddings", "false")
    assert rc == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    modes = _modes(out)
    assert {"model.safetensors", "scores.parquet", "config.json", "normalizer.json"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes


def test_heads_folder_has_the_usual_permissions(tmp_path, tiny_encoder_dir, umask027):
    from preforch.models.encoders import SentenceEncoder
    from preforch.rewards.heads import HeadsConfig, HeadSpec, SharedEncoderHeads

    heads = SharedEncoderHeads(HeadsConfig(heads=[HeadSpec("a")]), encoder=SentenceEncoder(str(tiny_encoder_dir)))
    heads.save_pretrained(tmp_path / "heads")
    assert set(_modes(tmp_path / "heads").values()) == {0o640}


# ---- interrupts, kills and leftovers -------------------------------------------------------------------------


def test_interrupted_adapter_train_publishes_nothing_and_reruns(tmp_path, capsys, monkeypatch, scored_file,
                                                               tiny_encoder_dir):
    from preforch.data import load

    real = load.write_table
    calls = []

    def interrupt(rows, path):
        calls.append(path)
        raise KeyboardInterrupt

    argv = ["adapter", "train", "--data", scored_file, "--output", tmp_path / "adapter", "--encoder-path",
            tiny_encoder_dir, "--epochs", "2", "--hidden", "8", "--plot", "false", "--progress", "false",
            "--cache-embeddings", "false"]
    monkeypatch.setattr(load, "write_table", interrupt)
    rc, _, err = cli(capsys, *argv)
    assert rc == 130 and calls and "interrupted" in err
    assert not (tmp_path / "adapter").exists() and not no_leftovers(tmp_path)
    monkeypatch.setattr(load, "write_table", real)
    rc, _, err = cli(capsys, *argv)
    assert rc == 0, err
    assert {"config.json", "model.safetensors", "normalizer.json", "report.json", "scores.parquet", "split.json"} <= {
        p.name for p in (tmp_path / "adapter").iterdir()}


def test_failed_overwrite_keeps_the_old_artifact(tmp_path, capsys, monkeypatch, scored_file, tiny_encoder_dir):
    argv = ["adapter", "train", "--data", scored_file, "--output", tmp_path / "adapter", "--encoder-path",
            tiny_encoder_dir, "--epochs", "2", "--hidden", "8", "--plot", "false", "--progress", "false",
            "--cache-embeddings", "false", "--overwrite", "true"]
    assert cli(capsys, *argv)[0] == 0
    before = (tmp_path / "adapter" / "model.safetensors").read_bytes()

    def disk_full(path):
        raise OSError(28, "No space left on device")

    from preforch import atomic

    monkeypatch.setattr(atomic, "_fsync", disk_full)
    one_line_error(capsys, *argv, "--seed", "3", match=r"cannot write \(No space left on device\)")
    assert (tmp_path / "adapter" / "model.safetensors").read_bytes() == before
    assert not no_leftovers(tmp_path)


def test_overwrite_of_a_file_by_a_folder_is_refused(tmp_path):
    from preforch.atomic import staged_dir
    from preforch.errors import PreforchError

    target = tmp_path / "out"
    target.write_text("keep me")
    with pytest.raises(PreforchError, match=r"out: exists and is not a folder"), staged_dir(target, overwrite=True):
        pass
    assert target.read_text() == "keep me" and not no_leftovers(tmp_path)


def test_overwrite_of_a_file_leaves_no_backup(tmp_path, capsys, pairs_file):
    out = tmp_path / "scored.jsonl"
    out.write_text("old\n")
    argv = ["score", "--input", pairs_file, "--output", out, "--scorers", RULE_SCORER, "--cache", "false",
            "--progress", "false"]
    one_line_error(capsys, *argv, match=r"scored\.jsonl: output file exists; pass --overwrite")
    assert cli(capsys, *argv, "--overwrite", "true")[0] == 0
    assert out.read_text() != "old\n" and not no_leftovers(tmp_path)


_CHILD = """
import sys, time
sys.path.insert(0, {src!r})
from pathlib import Path
from preforch.atomic import staged_dir, write_text
from preforch.cli.main import exit_on_termination
target = Path({target!r})
with exit_on_termination():
    if {kind!r} == "dir":
        with staged_dir(target, overwrite=True) as tmp:
            (tmp / "half.txt").write_text("half")
            print("ready", flush=True)
            time.sleep(60)
    else:
        import preforch.atomic as atomic
        with atomic.staged_file(target) as tmp:
            tmp.write_text("half")
            print("ready", flush=True)
            time.sleep(60)
"""


def _start_child(target: Path, kind: str) -> subprocess.Popen:
    code = _CHILD.format(src=SRC, target=str(target), kind=kind)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    return child


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_sigterm_cleans_up(tmp_path, kind):
    target = tmp_path / ("artifact" if kind == "dir" else "out.jsonl")
    child = _start_child(target, kind)
    assert no_leftovers(tmp_path)  # the staging is there while the child works
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    assert not no_leftovers(tmp_path) and not target.exists()


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_leftovers_of_a_killed_run_are_cleaned_by_the_next(tmp_path, kind):
    from preforch.atomic import staged_dir, write_text

    target = tmp_path / ("artifact" if kind == "dir" else "out.jsonl")
    child = _start_child(target, kind)
    child.kill()
    child.wait(timeout=30)
    assert no_leftovers(tmp_path)  # SIGKILL cannot be caught: the orphan stays ...
    if kind == "dir":
        with staged_dir(target) as tmp:
            (tmp / "whole.txt").write_text("whole")
        assert (target / "whole.txt").is_file()
    else:
        write_text(target, "whole\n")
    assert not no_leftovers(tmp_path)  # ... until the next run starts


def test_a_live_writer_is_left_alone(tmp_path):
    from preforch.atomic import write_text

    target = tmp_path / "artifact"
    child = _start_child(target, "dir")
    try:
        write_text(tmp_path / "artifact.other", "x")
        from preforch.atomic import clean_orphans

        assert clean_orphans(target) == []
        assert no_leftovers(tmp_path)
    finally:
        child.kill()
        child.wait(timeout=30)


def test_leftovers_from_earlier_versions_are_cleaned(tmp_path):
    from preforch.atomic import staged_dir, write_text

    (tmp_path / ".out.jsonl.ab12cd_9.tmp").write_text("old mkstemp orphan")
    write_text(tmp_path / "out.jsonl", "x\n")
    (tmp_path / "artifact").mkdir()
    (tmp_path / ".artifact.old").mkdir()
    (tmp_path / ".artifact.zz99yy_1.tmp").mkdir()
    with staged_dir(tmp_path / "artifact", overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert not no_leftovers(tmp_path) and (tmp_path / "artifact" / "new.txt").is_file()


def test_a_backup_of_a_killed_swap_is_put_back(tmp_path):
    """Killed between its two renames: the artifact is missing and only the backup holds it."""
    from preforch.atomic import clean_orphans

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    backup = tmp_path / f".artifact.{int(dead.stdout)}.old"
    backup.mkdir()
    (backup / "model.safetensors").write_text("weights")
    time.sleep(0.05)
    clean_orphans(tmp_path / "artifact")
    assert (tmp_path / "artifact" / "model.safetensors").read_text() == "weights"
    assert not no_leftovers(tmp_path)


_TRAIN_CHILD = """
import sys, time
sys.path.insert(0, {src!r})
import preforch.data.load as load
real = load.write_table

def slow_write(rows, path):  # the adapter folder is being published: stop here
    real(rows, path)
    print("ready", flush=True)
    time.sleep(60)

load.write_table = slow_write
from preforch.cli.main import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_adapter_train_killed_while_publishing(tmp_path, capsys, scored_file, tiny_encoder_dir, how):
    """A real `preforch adapter train` process stopped while its folder is staged: nothing is published; SIGTERM
    cleans up at once, a SIGKILL's leftovers go at the next run, which publishes a whole folder."""
    argv = ["adapter", "train", "--data", str(scored_file), "--output", str(tmp_path / "adapter"), "--encoder-path",
            str(tiny_encoder_dir), "--epochs", "2", "--hidden", "8", "--plot", "false", "--progress", "false",
            "--cache-embeddings", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", _TRAIN_CHILD.format(src=SRC, argv=argv)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    line = child.stdout.readline()
    assert line.strip() == "ready", child.stderr.read()
    child.send_signal(getattr(signal, how))
    child.wait(timeout=60)
    assert not (tmp_path / "adapter").exists()
    if how == "SIGTERM":
        assert child.returncode == 128 + signal.SIGTERM and not no_leftovers(tmp_path)
        assert "terminated by SIGTERM" in child.stderr.read()
    else:
        assert no_leftovers(tmp_path)
    rc, _, err = cli(capsys, *argv)
    assert rc == 0, err
    assert not no_leftovers(tmp_path)
    assert {"config.json", "model.safetensors", "normalizer.json", "report.json", "scores.parquet"} <= {
        p.name for p in (tmp_path / "adapter").iterdir()}


def _parquet_input(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("rows,output,match", [
    ([{"prompt": "p", "chosen": "c", "blob": b"\x00\x01"}], "out.jsonl", r"out\.jsonl: row 1, column 'blob': a bytes"),
    ([{"prompt": "p", "chosen": "c", "id": 1}, {"prompt": "q", "chosen": "d", "id": "a"}], "out.parquet",
     r"out\.parquet: cannot be written as parquet \(column 'id'"),
    ([{"prompt": "p", "chosen": "c", "meta": {}}], "out.parquet", r"out\.parquet: cannot be written as parquet"),
], ids=["bytes-to-jsonl", "mixed-types-to-parquet", "empty-struct-to-parquet"])
def test_score_output_unwritable_rows_fail_before_scoring(tmp_path, capsys, monkeypatch, rows, output, match):
    from preforch.recipes import score  # patched where the job looks the name up

    source = _parquet_input(tmp_path / "in.parquet", rows) if output.endswith(".jsonl") else \
        write_jsonl(tmp_path / "in.jsonl", rows)
    monkeypatch.setattr(score, "score_preference_data", _fail)
    one_line_error(capsys, "score", "--input", source, "--output", tmp_path / output, "--scorers", RULE_SCORER,
                   "--cache", "false", "--progress", "false", match=match)
    assert not (tmp_path / output).exists() and not no_leftovers(tmp_path)
