"""The remaining row readers (issue 12): evaluation responses and weights files, the alignment routes' rows,
and the conditioning file of `align conditioned`. Presence of a column is decided over all rows, booleans are
never numbers, and text cells are text."""

from __future__ import annotations

import json

import pytest

from preforch.errors import PreforchError

OBJ = ["helpful", "harmless"]


def _responses(changes):
    rows = [{"prompt": f"p{i % 2}", "response": f"r{i}", "score.helpful": float(i), "score.harmless": 1.0 - i}
            for i in range(4)]
    for (i, key), value in changes.items():
        if value is _DROP:
            rows[i].pop(key)
        else:
            rows[i][key] = value
    return rows


_DROP = object()

BAD_RESPONSES = [
    ("score-bool", {(1, "score.helpful"): True}, r"row 2, column 'score\.helpful'.*True"),
    ("score-text", {(1, "score.helpful"): "abc"}, r"row 2, column 'score\.helpful'.*'abc'"),
    ("score-null", {(2, "score.harmless"): None}, r"row 3, column 'score\.harmless'"),
    ("score-missing", {(3, "score.harmless"): _DROP}, r"row 4 has no column 'score\.harmless'"),
    ("score-only-later", {(2, "score.extra"): 1.0}, r"row 1 has no column 'score\.extra'"),
    ("score-nan", {(0, "score.helpful"): float("nan")}, r"row 1, column 'score\.helpful'.*finite"),
    ("prompt-null", {(1, "prompt"): None}, r"row 2.*'prompt'"),
    ("kind-only-some", {(1, "kind"): "x"}, r"'kind'"),
    ("policy-only-some", {(1, "policy"): "a"}, r"'policy'"),
]


@pytest.mark.parametrize("name,changes,match", BAD_RESPONSES, ids=[c[0] for c in BAD_RESPONSES])
def test_bad_responses_file(tmp_path, name, changes, match):
    from preforch.data.load import write_table
    from preforch.recipes.evaluate import load_responses

    path = tmp_path / "responses.jsonl"
    write_table(_responses(changes), path)
    with pytest.raises(PreforchError, match=match) as info:
        load_responses(str(path))
    assert "\n" not in str(info.value) and "responses.jsonl" in str(info.value)


def _weights_rows(changes):
    rows = [{"prompt": f"p{i}", "weight.helpful": 0.5, "weight.harmless": 0.5} for i in range(2)]
    for (i, key), value in changes.items():
        if value is _DROP:
            rows[i].pop(key)
        else:
            rows[i][key] = value
    return rows


BAD_WEIGHTS = [
    ("weight-missing-later", {(1, "weight.harmless"): _DROP}, r"row 2 has no column 'weight\.harmless'"),
    ("weight-bool", {(0, "weight.helpful"): True}, r"row 1, column 'weight\.helpful'.*True"),
    ("weight-text", {(1, "weight.helpful"): "x"}, r"row 2, column 'weight\.helpful'.*'x'"),
    ("weight-negative", {(1, "weight.helpful"): -1.0}, r"non-negative"),
    ("weight-only-later", {(1, "weight.other"): 1.0}, r"weight.*other"),
]


@pytest.mark.parametrize("name,changes,match", BAD_WEIGHTS, ids=[c[0] for c in BAD_WEIGHTS])
def test_bad_weights_file(tmp_path, name, changes, match):
    from preforch.conversation import as_conversations
    from preforch.data.load import write_table
    from preforch.recipes.evaluate import load_weights_file

    path = tmp_path / "weights.jsonl"
    write_table(_weights_rows(changes), path)
    with pytest.raises(PreforchError, match=match) as info:
        load_weights_file(str(path), OBJ, as_conversations(["p0", "p1"]))
    assert "\n" not in str(info.value) and "weights.jsonl" in str(info.value)


# ---- alignment rows --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,match", [
    (None, r"cands\.jsonl: row 2: 1 candidate response\(s\)"),
    (True, r"row 2, column 'b'.*bool"),
    (3.5, r"row 2, column 'b'.*float"),
    ({"text": "x"}, r"row 2, column 'b'.*dict"),
    (["ok", 7], r"row 2, column 'b'.*int"),
], ids=["null", "bool", "number", "dict", "list-with-number"])
def test_bad_candidate_cells(cell, match):
    from preforch.align.data import candidates_from_rows

    rows = [{"a": "x", "b": "y"}, {"a": "x", "b": cell}]
    with pytest.raises(PreforchError, match=match):
        candidates_from_rows(rows, ["a", "b"], "cands.jsonl")


def test_candidate_column_missing_in_a_later_row():
    from preforch.align.data import candidates_from_rows

    rows = [{"a": "x", "b": "y"}, {"a": "x", "c": "y"}, {"a": "x", "b": "z"}]
    with pytest.raises(PreforchError, match=r"cands\.jsonl: row 2.*'b'"):
        candidates_from_rows(rows, ["a", "b"], "cands.jsonl")


def test_candidate_column_missing_in_the_first_row_only():
    """Presence is decided over all rows: a column the first row lacks is not 'missing' when others have it."""
    from preforch.align.data import candidates_from_rows

    rows = [{"a": "x", "b": "y", "c": "w"}, {"a": "x", "b": "z", "c": "v"}]
    assert candidates_from_rows(rows, ["a", "b", "c"], "cands.jsonl") == [["x", "y", "w"], ["x", "z", "v"]]
    with pytest.raises(PreforchError, match=r"row 1 has no 'd'"):
        candidates_from_rows([{"a": "x", "b": "y"}, {"a": "x", "b": "y", "d": "q"}], ["a", "b", "d"], "cands.jsonl")


def test_prompt_column_chosen_per_row():
    """A custom prompt column in a later row only must not be ignored because the first row lacks it."""
    from preforch.align.data import preference_rows

    rows = [{"question": "q1", "chosen": "c1"}, {"question": "q2", "chosen": "c2"}]
    data = preference_rows(rows, "rows.jsonl", prompt_column="question")
    assert [p.last_user for p in data.prompts] == ["q1", "q2"]
    with pytest.raises(PreforchError, match=r"row 1 has no 'question'"):
        preference_rows([{"prompt": "q1", "chosen": "c1"}, {"question": "q2", "chosen": "c2"}], "rows.jsonl",
                        prompt_column="question")


# ---- the conditioning file --------------------------------------------------------------------------------------

GOOD = {"format_version": 1, "objectives": OBJ, "decimals": 1, "mapping": "ric", "low": [0.0, 0.0],
        "high": [1.0, 1.0]}


@pytest.mark.parametrize("content,match", [
    (b"[1]", r"conditioning\.json: .*(object|list)"),
    (b"{", r"conditioning\.json: not valid JSON"),
    (b'{"format_version": 1, "x": "\xff"}', r"conditioning\.json: line 1 .*UTF-8"),
    (json.dumps({**GOOD, "decimals": True}).encode(), r"conditioning\.json: .*decimals"),
    (json.dumps({**GOOD, "decimals": 10**9}).encode(), r"conditioning\.json: .*decimals"),
    (json.dumps({**GOOD, "mapping": "magic"}).encode(), r"conditioning\.json: .*mapping"),
    (json.dumps({**GOOD, "low": [0.0, float("nan")]}).encode(), r"conditioning\.json: .*(finite|low)"),
    (json.dumps({**GOOD, "objectives": "ab"}).encode(), r"conditioning\.json: .*objectives"),
    (json.dumps({**GOOD, "high": [1.0]}).encode(), r"conditioning\.json: .*one value per objective"),
], ids=["list", "invalid", "not-utf8", "decimals-bool", "decimals-huge", "mapping", "low-nan", "objectives-text",
        "high-short"])
def test_bad_conditioning_file(tmp_path, content, match):
    from preforch.infer.conditioning import Conditioning

    path = tmp_path / "conditioning.json"
    path.write_bytes(content)
    with pytest.raises(PreforchError, match=match):
        Conditioning.load(path)
