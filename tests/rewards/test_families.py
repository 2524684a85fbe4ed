"""Each reward-model family is fed its own input shape and read from its own output, on tiny stand-ins that
score a known pair the right way round only when fed correctly (see standin_rms.py)."""

from __future__ import annotations

import pytest
from standin_rms import BAD_REPLY, GOOD_REPLY, PROMPT, make_standin

from preforch.errors import PreforchError
from preforch.rewards.hf import HFScorer, HFScorerConfig
from preforch.rewards.registry import build_scorers


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return {family: make_standin(root / family, family) for family in ("chat", "hh", "pair", "armo")}


def scores(path, **settings) -> list[float]:
    scorer = HFScorer(HFScorerConfig(path=str(path), device="cpu", trust_remote_code=True, **settings))
    return scorer.score([PROMPT, PROMPT], [GOOD_REPLY, BAD_REPLY])[:, 0].tolist()


#: family → its settings in configs/gpu (template, output)
FAMILIES = {"chat": {"template": "chat"}, "hh": {"template": "hh"}, "pair": {"template": "pair"},
            "armo": {"template": "chat", "output": "score"}}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_scores_the_known_pair_the_right_way_round(family, standins):
    good, bad = scores(standins[family], **FAMILIES[family])
    assert good > bad


@pytest.mark.parametrize(("family", "wrong"), [("chat", "hh"), ("hh", "plain"), ("hh", "chat"), ("pair", "plain"),
                                               ("pair", "chat")])
def test_a_wrongly_fed_standin_gives_no_ordering(family, wrong, standins):
    """What the recipes used to do (plain for Ray2333, a blank-line join for DeBERTa) gives the stand-in no reply."""
    good, bad = scores(standins[family], template=wrong, **({"separator": "\n\n"} if wrong == "plain" else {}))
    assert good == bad == 0.0


def test_pair_template_sends_a_text_pair(standins):
    scorer = HFScorer(HFScorerConfig(path=str(standins["pair"]), device="cpu", template="pair",
                                     trust_remote_code=True))
    texts, pairs = scorer.inputs([PROMPT], [GOOD_REPLY])
    assert texts == [PROMPT] and pairs == [GOOD_REPLY]
    assert scorer.format(PROMPT, GOOD_REPLY) == f"{PROMPT}[SEP]{GOOD_REPLY}"


def test_armo_outputs_by_name_and_index(standins):
    path = standins["armo"]
    assert scores(path, output="rewards", logit_index=0) == [2.0, 0.0]  # helpful: GOOD words
    assert scores(path, output="rewards", logit_index=1) == [0.0, -2.0]  # harmless: minus BAD words
    with pytest.raises(PreforchError, match=r"has no output 'logits'; its outputs are \['score', 'rewards'\]"):
        scores(path)
    with pytest.raises(PreforchError, match="logit_index 3 is out of range for output 'rewards' of width 3"):
        scores(path, output="rewards", logit_index=3)
    with pytest.raises(PreforchError, match="with output 'rewards' pick the column with logit_index"):
        scores(path, output="rewards", label="helpful")
    with pytest.raises(PreforchError, match="output must be an output name"):
        HFScorerConfig(path=str(path), output="rewards[1]")


def test_custom_code_runs_only_when_the_users_config_allows_it(standins):
    with pytest.raises(PreforchError, match="trust_remote_code"):
        HFScorer(HFScorerConfig(path=str(standins["armo"]), device="cpu", output="score"))


def test_python_scorer_spec():
    (scorer,) = build_scorers([{"type": "python", "callable": "standin_rms:keyword_scores", "objectives": ["tone"]}])
    assert scorer.objectives == ["tone"] and scorer.identity() == "callable:standin_rms:keyword_scores"
    assert scorer.score([PROMPT, PROMPT], [GOOD_REPLY, BAD_REPLY])[:, 0].tolist() == [2.0, -2.0]
    (named,) = build_scorers([{"type": "python", "callable": "standin_rms:keyword_scores", "objectives": "tone",
                               "identity": "kw@v2"}])
    assert named.identity() == "callable:kw@v2"


@pytest.mark.parametrize(("spec", "message"), [
    ({"callable": "standin_rms", "objectives": ["a"]}, r"needs 'callable' as \"module:function\""),
    ({"callable": "no_such_module_xyz:f", "objectives": ["a"]}, r"cannot import module 'no_such_module_xyz'"),
    ({"callable": "standin_rms:nope", "objectives": ["a"]}, r"module 'standin_rms' has no 'nope'"),
    ({"callable": "standin_rms:keyword_scores"}, r"needs 'objectives'"),
    ({"callable": "standin_rms:keyword_scores", "objectives": ["a"], "path": "x"}, r"unknown key\(s\) \['path'\]"),
])
def test_python_scorer_errors_name_the_spec(spec, message):
    with pytest.raises(PreforchError, match=rf"^scorers\[1\] \('python'\): .*{message}"):
        build_scorers([{"type": "python", **spec}])
