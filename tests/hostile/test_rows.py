"""Hostile rows: what a data file may hold once it parses. Each row-level problem is one line naming the
source, the row and the column; rows that are fine give the right conversations, responses and scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preforch.data.load import to_preference_data
from preforch.errors import PreforchError

HH = "\n\nHuman: {p}\n\nAssistant: {r}"


def row(i: int = 1, **extra) -> dict:
    return {"prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}", **extra}


# name, rows, regular expression the error must match
BAD_ROWS = [
    ("chosen-null", [row(1), {**row(2), "chosen": None}], r"src: row 2, column 'chosen'.*null"),
    ("chosen-nan", [row(1), {**row(2), "chosen": float("nan")}], r"row 2, column 'chosen'.*null"),
    ("chosen-number", [{**row(1), "chosen": 42}], r"row 1, column 'chosen'.*int"),
    ("chosen-bool", [{**row(1), "chosen": True}], r"row 1, column 'chosen'.*bool"),
    ("chosen-dict", [{**row(1), "chosen": {"text": "x"}}], r"row 1, column 'chosen'.*dict"),
    ("hh-chosen-null", [{"chosen": HH.format(p="a", r="b")}, {"chosen": None}], r"row 2, column 'chosen'.*null"),
    ("messages-content-number", [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 7}]}],
     r"row 1, column 'messages'.*content"),
    ("rejected-null", [row(1), {**row(2), "rejected": None}], r"row 2 has no 'rejected' value.*row 1 has one"),
    ("rejected-missing-later", [row(1), row(2), {"prompt": "p3", "chosen": "c3"}], r"row 3 has no 'rejected'"),
    ("rejected-missing-first", [{"prompt": "p1", "chosen": "c1"}, row(2)], r"row 1 has no 'rejected'.*row 2"),
    ("score-missing-later", [row(1, **{"score.a": 1, "score.b": 2}), row(2)], r"row 2 has no column 'score\.a'"),
    ("score-missing-first", [row(1), row(2, **{"score.a": 1, "score.b": 2})], r"row 1 has no column 'score\.a'"),
    ("score-null", [row(1, **{"score.a": 1, "score.b": 2}), row(2, **{"score.a": None, "score.b": 2})],
     r"row 2, column 'score\.a'.*None"),
    ("score-bool", [row(1, **{"score.a": True, "score.b": 2})], r"row 1, column 'score\.a'.*True"),
    ("score-rejected-bool", [row(1, **{"score.a": 1, "score.b": 2, "score_rejected.a": 0, "score_rejected.b": False})],
     r"row 1, column 'score_rejected\.b'.*False"),
    ("score-text", [row(1, **{"score.a": "abc", "score.b": 2})], r"row 1, column 'score\.a'.*'abc'"),
    ("score-nan-text", [row(1, **{"score.a": "nan", "score.b": 2})], r"row 1, column 'score\.a'.*finite"),
    ("score-inf", [row(1, **{"score.a": math.inf, "score.b": 2})], r"row 1, column 'score\.a'.*finite"),
    ("score-huge-int", [row(1, **{"score.a": 10**400, "score.b": 2})], r"row 1, column 'score\.a'.*number"),
    ("score-list", [row(1, **{"score.a": [1.0], "score.b": 2})], r"row 1, column 'score\.a'.*\[1\.0\]"),
    ("one-objective", [row(1, **{"score.a": 1.0})], r"1 objective.*at least 2"),
    ("empty-objective-name", [row(1, **{"score.": 1.0, "score.b": 2.0})], r"score\.'.*(empty|name)"),
    ("rejected-objectives-differ", [row(1, **{"score.a": 1, "score.b": 2, "score_rejected.a": 1, "score_rejected.c": 2})],
     r"score_rejected.*differ"),
    ("score-rejected-missing-later", [row(1, **{"score.a": 1, "score.b": 2, "score_rejected.a": 1, "score_rejected.b": 2}),
                                      row(2, **{"score.a": 1, "score.b": 2})], r"row 2 has no column 'score_rejected\.a'"),
    ("kind-missing-later", [row(1, kind="x"), row(2)], r"row 2 has no 'kind' value"),
    ("prompt-number", [{**row(1), "prompt": 5}], r"row 1, column 'prompt'.*int"),
    ("prompt-empty", [{**row(1), "prompt": "   "}], r"row 1, column 'prompt'.*empty"),
    ("prompt-null", [{**row(1), "prompt": None}], r"row 1, column 'prompt'"),
    ("prompt-bad-role", [{**row(1), "prompt": [{"role": "robot", "content": "x"}]}], r"row 1, column 'prompt'.*robot"),
    ("prompt-ends-with-assistant", [{**row(1), "prompt": [{"role": "user", "content": "q"},
                                                          {"role": "assistant", "content": "a"}]}],
     r"row 1, column 'prompt'.*user turn"),
    ("messages-not-list", [{"messages": "hello"}], r"row 1, column 'messages'.*list"),
    ("messages-no-reply", [{"messages": [{"role": "user", "content": "q"}]}], r"row 1, column 'messages'.*assistant"),
    ("hh-prompts-differ", [{"chosen": HH.format(p="a", r="b"), "rejected": HH.format(p="z", r="c")}],
     r"row 1.*differ"),
    ("hh-text-before-human", [{"chosen": "hi\n\nHuman: a\n\nAssistant: b"}], r"row 1, column 'chosen'"),
    ("no-known-columns", [{"question": "q", "answer": "a"}], r"row 1: missing columns"),
    ("row-not-object", [row(1), ["p", "c"]], r"row 2 is a list"),
    ("prompt-lone-surrogate", [{**row(1), "prompt": "p\ud800"}], r"row 1.*surrogate"),
    ("chosen-lone-surrogate", [row(1), {**row(2), "chosen": "c\udfff"}], r"row 2.*surrogate"),
    ("mixed-shapes-rejected-missing", [row(1), {"chosen": HH.format(p="a", r="b")}], r"row 2 has no 'rejected'"),
]


@pytest.mark.parametrize("name,rows,match", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_bad_rows(name, rows, match):
    with pytest.raises(PreforchError, match=match) as info:
        to_preference_data(rows, source="src")
    assert "\n" not in str(info.value)


def test_rows_mixing_shapes_parse_each_row_its_own_way():
    rows = [row(1),
            {"messages": [{"role": "user", "content": "p2"}, {"role": "assistant", "content": "c2"}]},
            {"chosen": HH.format(p="p3", r="c3"), "rejected": HH.format(p="p3", r="r3")},
            {"prompt": [{"role": "user", "content": "p4"}], "chosen": [{"role": "assistant", "content": "c4"}],
             "rejected": [{"role": "assistant", "content": "r4"}]}]
    rows[1]["rejected"] = "r2"  # the messages shape carries no rejected reply; the column is ignored there
    data = to_preference_data([r for i, r in enumerate(rows) if i != 1], source="src")
    assert [p.last_user for p in data.prompts] == ["p1", "p3", "p4"]
    assert data.chosen == ["c1", "c3", "c4"] and data.rejected == ["r1", "r3", "r4"]


def test_scores_as_text_numbers_are_numbers():
    """CSV cells are text: '1.5' is the number 1.5."""
    data = to_preference_data([row(1, **{"score.a": "1.5", "score.b": "-2"})], source="src")
    assert data.scores_chosen.tolist() == [[1.5, -2.0]]


def test_extreme_finite_scores_load_exactly():
    data = to_preference_data([row(1, **{"score.a": 1e308, "score.b": -1e308})], source="src")
    assert data.scores_chosen.tolist() == [[1e308, -1e308]]


def test_score_columns_in_different_orders_keep_first_seen_order():
    data = to_preference_data([row(1, **{"score.b": 1, "score.a": 2}), row(2, **{"score.a": 3, "score.b": 4})])
    assert data.objectives == ["b", "a"] and data.scores_chosen.tolist() == [[1, 2], [4, 3]]


# ---- property: any row is parsed right or refused in one line --------------------------------------------------

CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "  ", "\ud800", "1e308", "nan", HH.format(p="a", r="b")]),
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "robot"]),
                                     "content": st.one_of(st.text(max_size=5), st.none(), st.integers())}),
             max_size=3),
)
COLUMNS = st.sampled_from(["prompt", "chosen", "rejected", "messages", "kind", "score.a", "score.b",
                           "score_rejected.a", "score_rejected.b", "other"])
ROWS = st.lists(st.dictionaries(COLUMNS, CELLS, max_size=7), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_property_rows_parse_or_fail_in_one_line(rows):
    try:
        data = to_preference_data(rows, source="src")
    except PreforchError as err:
        message = str(err)
        assert "\n" not in message and message.startswith("src"), message
        return
    n = len(rows)
    assert len(data.prompts) == len(data.chosen) == n
    assert all(isinstance(c, str) for c in data.chosen)
    for text in data.chosen + (data.rejected or []) + [p.text() for p in data.prompts]:
        text.encode("utf-8")  # no lone surrogate got through
    if data.rejected is not None:
        assert len(data.rejected) == n and all(isinstance(r, str) for r in data.rejected)
    if data.scores_chosen is not None:
        assert data.scores_chosen.shape == (n, len(data.objectives)) and np.isfinite(data.scores_chosen).all()
        assert all(data.objectives)
        for i, r in enumerate(rows):  # every score is the row's own number, never a boolean or a default
            for k, name in enumerate(data.objectives):
                value = r[f"score.{name}"]
                assert not isinstance(value, bool) and float(value) == data.scores_chosen[i, k]
