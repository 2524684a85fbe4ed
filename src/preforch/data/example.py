"""The embedded example data: four kinds of prompts, each judged on a different need (see ATTRIBUTION.md).

- ``hh-harmless``: Anthropic HH-RLHF harmless-base, red-team dialogues; the preferred reply is the more harmless.
- ``hh-helpful``: Anthropic HH-RLHF helpful-base, everyday requests in the same dialogue form; the preferred
  reply is the more helpful.
- ``ultrafeedback``: UltraFeedback, long single-turn tasks; the preferred reply has the higher GPT-4 overall score.
- ``coconot``: CoCoNot contrast pairs, requests that *look* sensitive or are under-specified but should be answered
  ("How can I kill time during a long flight?"); the preferred reply is the better complying one. The only shipped
  data in which red-team-like wording and "helpfulness decides" go together.

``embedded:example`` (the main job) pools the first three; ``embedded:all`` adds CoCoNot. The two HH kinds share markup, length and style and differ in what the prompts ask, so an adapter can only tell
them apart by intent. Every row is tagged with its ``kind``. ``embedded:<name>`` strings name these sets
wherever a data path is accepted (:data:`EMBEDDED_SETS`, :func:`load_embedded`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from preforch.data.load import read_table, to_preference_data
from preforch.errors import PreforchError
from preforch.types import PreferenceData

HERE = Path(__file__).resolve().parent
HH_FILE = HERE / "hh_rlhf_harmless_base_dev2000.jsonl.gz"
HH_HELPFUL_FILE = HERE / "hh_rlhf_helpful_base_test.jsonl.gz"
UF_FILE = HERE / "ultrafeedback_binarized_sample_train1000.jsonl.gz"
COCONOT_FILE = HERE / "coconot_pref.jsonl.gz"
HH_REPLY_MARKER = "\n\nAssistant:"
KIND_HARMLESS = "hh-harmless"
KIND_HH_HELPFUL = "hh-helpful"
KIND_ULTRAFEEDBACK = "ultrafeedback"
KIND_COCONOT = "coconot"
KINDS = (KIND_HARMLESS, KIND_HH_HELPFUL, KIND_ULTRAFEEDBACK)
ALL_KINDS = (*KINDS, KIND_COCONOT)
EMBEDDED_PREFIX = "embedded:"
#: ``embedded:<name>`` → the kinds it pools.
EMBEDDED_SETS = {
    "embedded:example": KINDS,
    "embedded:hh": (KIND_HARMLESS,),
    "embedded:hh-harmless": (KIND_HARMLESS,),
    "embedded:hh-helpful": (KIND_HH_HELPFUL,),
    "embedded:ultrafeedback": (KIND_ULTRAFEEDBACK,),
    "embedded:helpful": (KIND_HH_HELPFUL, KIND_ULTRAFEEDBACK),
    "embedded:coconot": (KIND_COCONOT,),
    "embedded:helpful-all": (KIND_HH_HELPFUL, KIND_ULTRAFEEDBACK, KIND_COCONOT),
    "embedded:all": ALL_KINDS,
}


def _hh_rows(path: Path, kind: str) -> list[dict]:
    return [{"chosen": r["chosen"], "rejected": r["rejected"], "kind": kind} for r in read_table(path)]


def load_hh(limit: int | None = None) -> PreferenceData:
    """HH-RLHF harmless-base pairs (2,000), in file order."""
    return to_preference_data(_hh_rows(HH_FILE, KIND_HARMLESS)[:limit], source=str(HH_FILE))


def _before_last_reply(dialogue: str) -> str:
    return dialogue[: dialogue.rfind(HH_REPLY_MARKER)]


def load_hh_helpful(limit: int | None = None) -> PreferenceData:
    """HH-RLHF helpful-base test pairs, in file order: 2,354 − 11 = 2,343 pairs. Dropped: the 9 rows whose two
    dialogues differ before the last ``Assistant:`` marker (one reply spans several assistant turns, so the
    usual HH split gives the two replies different prompts) and the 2 rows whose replies are identical (no
    preference)."""
    rows = [r for r in _hh_rows(HH_HELPFUL_FILE, KIND_HH_HELPFUL)
            if _before_last_reply(r["chosen"]) == _before_last_reply(r["rejected"]) and r["chosen"] != r["rejected"]]
    return to_preference_data(rows[:limit], source=str(HH_HELPFUL_FILE))


def load_ultrafeedback(limit: int | None = None, drop_ties: bool = True) -> PreferenceData:
    """UltraFeedback pairs in file order; the 111 ties (equal ratings) carry no preference and are dropped."""
    rows = []
    for r in read_table(UF_FILE):
        meta = r.get("metadata") or {}
        if drop_ties and meta.get("score_chosen") == meta.get("score_rejected"):
            continue
        rows.append({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                     "kind": KIND_ULTRAFEEDBACK})
    return to_preference_data(rows[:limit], source=str(UF_FILE))


def load_coconot(limit: int | None = None) -> PreferenceData:
    """CoCoNot contrast preference pairs in file order (927 pairs, 919 prompts; single-turn plain prompts)."""
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"], "kind": KIND_COCONOT}
            for r in read_table(COCONOT_FILE) if r["chosen"] != r["rejected"]]
    return to_preference_data(rows[:limit], source=str(COCONOT_FILE))


LOADERS = {KIND_HARMLESS: load_hh, KIND_HH_HELPFUL: load_hh_helpful, KIND_ULTRAFEEDBACK: load_ultrafeedback,
           KIND_COCONOT: load_coconot}


def pool(parts: list[PreferenceData], source: str, seed: int | None = 0) -> PreferenceData:
    """Rows of several sets in one, shuffled with ``seed`` (None keeps the order)."""
    pooled = PreferenceData(
        prompts=[p for d in parts for p in d.prompts], chosen=[c for d in parts for c in d.chosen],
        rejected=[r for d in parts for r in (d.rejected or [])], kinds=[k for d in parts for k in (d.kinds or [])],
        source=source)
    if seed is None:
        return pooled
    return pooled.subset(np.random.default_rng(seed).permutation(len(pooled)))


def load_example(limit_per_kind: int | None = None, seed: int | None = 0,
                 kinds: tuple[str, ...] | list[str] = KINDS) -> PreferenceData:
    """The chosen kinds pooled and shuffled (seeded), at most ``limit_per_kind`` rows of each (the first ones of
    each file), so the kinds are balanced when the limit is at most the smallest kind (889 UltraFeedback pairs).
    ``seed`` None keeps the file order (kind after kind)."""
    unknown = [k for k in kinds if k not in LOADERS]
    if unknown or not kinds:
        raise PreforchError(f"embedded example: unknown kind(s) {unknown}; expected a non-empty subset of "
                            f"{list(ALL_KINDS)}")
    parts = [LOADERS[k](limit_per_kind) for k in dict.fromkeys(kinds)]
    return pool(parts, f"embedded example ({' + '.join(dict.fromkeys(kinds))})", seed)


def is_embedded(name: str) -> bool:
    return isinstance(name, str) and name.startswith(EMBEDDED_PREFIX)


def load_embedded(name: str, limit_per_kind: int | None = None, seed: int | None = 0) -> PreferenceData:
    """An ``embedded:<name>`` set (see :data:`EMBEDDED_SETS`)."""
    if name not in EMBEDDED_SETS:
        raise PreforchError(f"data {name!r}: unknown embedded set; expected one of {sorted(EMBEDDED_SETS)}")
    return load_example(limit_per_kind, seed=seed, kinds=EMBEDDED_SETS[name])
