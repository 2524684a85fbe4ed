"""Hostile data files: every reader either returns the right rows or fails with one line naming the file
(and the line or row where there is one). Library cases through ``load_preference_data``; a CLI case per
file through ``preforch score`` with a rule scorer (no model)."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest
from hostile_helpers import RULE_SCORER, no_leftovers, one_line_error, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preforch.data.load import load_preference_data, read_prompts_file, read_table
from preforch.errors import PreforchError

GOOD = [{"prompt": "p1", "chosen": "c1", "rejected": "r1"}, {"prompt": "p2", "chosen": "c2", "rejected": "r2"}]
GOOD_JSONL = "".join(json.dumps(r) + "\n" for r in GOOD).encode()


def _parquet_bytes(rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({"prompt": pa.array([], pa.string())}), sink)
    return sink.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


# name, file name, contents, regular expression the error must match
BROKEN_FILES = [
    ("jsonl-not-utf8", "data.jsonl", b'{"prompt": "caf\xe9", "chosen": "c"}\n', r"data\.jsonl: line 1 .*UTF-8"),
    ("json-not-utf8", "data.json", b'[{"prompt": "caf\xe9", "chosen": "c"}]', r"data\.json.*(UTF-8|utf-8)"),
    ("csv-not-utf8", "data.csv", b"prompt,chosen\ncaf\xe9,c\n", r"data\.csv.*(UTF-8|utf-8)"),
    ("gzip-compressed-without-suffix", "data.jsonl", _gzip(GOOD_JSONL), r"data\.jsonl.*(UTF-8|utf-8)"),
    ("gzip-truncated", "data.jsonl.gz", _gzip(GOOD_JSONL)[:-12], r"data\.jsonl\.gz.*(truncated|gzip)"),
    ("gzip-fake", "data.jsonl.gz", GOOD_JSONL, r"data\.jsonl\.gz.*gzip"),
    ("gzip-corrupt-body", "data.jsonl.gz", _gzip(GOOD_JSONL)[:12] + b"\x00" * 40, r"data\.jsonl\.gz.*(gzip|corrupt)"),
    ("gzip-empty-file", "data.jsonl.gz", b"", r"data\.jsonl\.gz.*no rows"),
    ("parquet-empty-file", "data.parquet", b"", r"data\.parquet.*(parquet|empty)"),
    ("parquet-garbage", "data.parquet", b"PAR1 this is not parquet at all PAR1", r"data\.parquet.*parquet"),
    ("parquet-truncated", "data.parquet", _parquet_bytes(GOOD)[:-30], r"data\.parquet.*parquet"),
    ("parquet-zero-rows", "data.parquet", _parquet_bytes([]), r"data\.parquet.*no rows"),
    ("jsonl-empty", "data.jsonl", b"", r"data\.jsonl.*no rows"),
    ("jsonl-blank-lines", "data.jsonl", b"\n  \n\n", r"data\.jsonl.*no rows"),
    ("jsonl-bad-line", "data.jsonl", GOOD_JSONL + b'{"prompt": "p3", \n', r"data\.jsonl.*line 3.*JSON"),
    ("jsonl-array-line", "data.jsonl", b'["p", "c"]\n', r"data\.jsonl.*line 1.*list"),
    ("jsonl-lone-surrogate", "data.jsonl", GOOD_JSONL + b'{"prompt": "p\\ud800", "chosen": "c", "rejected": "r"}\n',
     r"data\.jsonl.*line 3.*(surrogate|UTF-8)"),
    ("jsonl-surrogate-in-other-column", "data.jsonl",
     b'{"prompt": "p", "chosen": "c", "rejected": "r", "id": "\\udfff"}\n', r"data\.jsonl.*line 1.*'id'"),
    ("jsonl-deeply-nested", "data.jsonl", b'{"prompt": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
     r"data\.jsonl.*line 1"),
    ("json-not-a-list", "data.json", b'{"rows": 1}', r"data\.json.*list of objects"),
    ("json-invalid", "data.json", b"[{]", r"data\.json.*not valid JSON"),
    ("json-lone-surrogate", "data.json", b'[{"prompt": "\\ud83d", "chosen": "c"}]', r"data\.json.*(surrogate|UTF-8)"),
    ("csv-extra-fields", "data.csv", b"prompt,chosen\np1,c1\np2,c2,surprise\n", r"data\.csv.*line 3.*field"),
    ("csv-empty", "data.csv", b"", r"data\.csv.*no rows"),
    ("unknown-suffix", "data.xlsx", b"whatever", r"data\.xlsx.*unknown data format"),
]


@pytest.mark.parametrize("name,filename,content,match", BROKEN_FILES, ids=[c[0] for c in BROKEN_FILES])
def test_broken_file_library(tmp_path, name, filename, content, match):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(PreforchError, match=match) as info:
        load_preference_data(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,filename,content,match", BROKEN_FILES[:20], ids=[c[0] for c in BROKEN_FILES[:20]])
def test_broken_file_cli_score(tmp_path, capsys, name, filename, content, match):
    path = tmp_path / filename
    path.write_bytes(content)
    out = tmp_path / "out" / "scored.jsonl"
    one_line_error(capsys, "score", "--input", path, "--output", out, "--scorers", RULE_SCORER, "--cache", "false",
                   "--progress", "false", match=match)
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not no_leftovers(tmp_path / "out")


def test_fifo_is_refused_not_read(tmp_path):
    """A named pipe called data.jsonl would block forever on open()."""
    path = tmp_path / "data.jsonl"
    os.mkfifo(path)
    with pytest.raises(PreforchError, match=r"data\.jsonl.*not a regular file"):
        read_table(path)


def test_saved_datasets_folder_with_garbage_metadata(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{not json")
    (folder / "state.json").write_text("[]")
    with pytest.raises(PreforchError, match=r"ds.*(datasets|saved)"):
        read_table(folder)


def test_directory_named_like_a_file(tmp_path):
    (tmp_path / "data.jsonl").mkdir()
    with pytest.raises(PreforchError, match=r"data\.jsonl"):
        read_table(tmp_path / "data.jsonl")


# ---- files that must simply work --------------------------------------------------------------------------


def test_utf8_bom_jsonl_reads(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_JSONL)
    assert read_table(path) == GOOD


def test_utf8_bom_csv_reads(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbfprompt,chosen\np1,c1\n")
    assert read_table(path) == [{"prompt": "p1", "chosen": "c1"}]


def test_csv_long_field_reads(tmp_path):
    """csv's default field limit (128 KiB) is no reason to refuse a long response."""
    path = tmp_path / "data.csv"
    long = "word " * 60_000
    path.write_text(f"prompt,chosen\np1,{long}\n")
    assert read_table(path)[0]["chosen"] == long


def test_csv_nul_byte_reads(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"prompt,chosen\np\x00,c\n")
    assert read_table(path) == [{"prompt": "p\x00", "chosen": "c"}]


def test_gzipped_parquet_reads(tmp_path):
    path = tmp_path / "data.parquet.gz"
    path.write_bytes(_gzip(_parquet_bytes(GOOD)))
    assert read_table(path) == GOOD


def test_escaped_surrogate_pair_is_a_valid_character(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"prompt": "smile \U0001F600", "chosen": "c"}])
    path.write_text(path.read_text().replace("\U0001F600", "\\ud83d\\ude00"))
    assert read_table(path)[0]["prompt"] == "smile \U0001F600"


# ---- prompts files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filename,content,match", [
    ("prompts.txt", b"hello\ncaf\xe9\n", r"prompts\.txt.*(UTF-8|utf-8)"),
    ("prompts.txt.gz", b"not gzip", r"prompts\.txt\.gz.*gzip"),
    ("prompts.txt", b"\n\n  \n", r"prompts\.txt.*no prompts"),
    ("prompts.jsonl", b'{"prompt": null}\n', r"prompts\.jsonl.*row 1"),
    ("prompts.jsonl", b'{"prompt": 42}\n', r"prompts\.jsonl.*row 1.*int"),
    ("prompts.jsonl", b'{"messages": [{"role": "user", "content": "\\udc80"}]}\n', r"prompts\.jsonl.*line 1"),
], ids=["txt-not-utf8", "txt-gz-fake", "txt-empty", "jsonl-null", "jsonl-number", "jsonl-surrogate"])
def test_broken_prompts_file(tmp_path, filename, content, match):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(PreforchError, match=match):
        read_prompts_file(path)


# ---- property: any bytes under any data-file name are rows or one line ------------------------------------------

SEEDS = [GOOD_JSONL, b'[{"prompt": "p", "chosen": "c"}]', b"prompt,chosen\np,c\n", _parquet_bytes(GOOD)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["d.jsonl", "d.json", "d.csv", "d.parquet", "d.jsonl.gz", "d.csv.gz", "d.parquet.gz"]),
       seed=st.sampled_from(SEEDS), cut=st.integers(0, 400), noise=st.binary(max_size=24),
       compress=st.booleans())
def test_property_any_bytes(tmp_path_factory, name, seed, cut, noise, compress):
    data = seed[:cut] + noise + seed[cut:] if noise else seed[:cut]
    if compress:
        data = _gzip(data)[: max(1, len(data) // 2)] if cut % 3 == 0 else _gzip(data)
    path = tmp_path_factory.mktemp("bytes") / name
    path.write_bytes(data)
    try:
        rows = read_table(path)
    except PreforchError as err:
        assert "\n" not in str(err) and str(path) in str(err), str(err)
        return
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
