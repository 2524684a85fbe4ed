"""Issue 7, GPU: scoring throughput of a GPT-2-large-size reward model (GPT2ForSequenceClassification built from
config, random weights) in bf16 vs fp32 through the project's HFScorer, adapter inference throughput (a
MiniLM-size encoder + the adapter MLP, and the MLP alone), and one GRPO step with a small random policy through
``preforch.align.grpo.run_rl``. No network, no model files: models come from configs, the tokenizer is a
word-level one built from the example data's words. ``--dry-run`` (or no CUDA) runs tiny sizes on the CPU.
Prints one table. Called by benchmarks/gpu_check.sh.

    python benchmarks/perf_gpu.py [--dry-run] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import perf_common as pc

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} \n{% endfor %}"
                 "{% if add_generation_prompt %}assistant :{% endif %}")


def word_tokenizer(texts: list[str], folder: Path, vocab_size: int):
    """A word-level fast tokenizer over the most common words of ``texts`` (no files needed), saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    counts = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(specials + [w for w, _ in counts.most_common(vocab_size - len(specials))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    from tokenizers import normalizers

    core.normalizer = normalizers.Lowercase()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>", model_max_length=1024)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return tok


def bench_reward_model(tmp: Path, tok, prompts, responses, dry: bool, device: str, repeats: int) -> list[list]:
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from preforch.rewards.hf import HFScorer, HFScorerConfig

    size = {"n_embd": 64, "n_layer": 2, "n_head": 2} if dry else {"n_embd": 1280, "n_layer": 36, "n_head": 20}  # gpt2-large
    config = GPT2Config(vocab_size=len(tok), n_positions=1024, num_labels=1, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **size)
    torch.manual_seed(0)
    folder = tmp / "rm"
    GPT2ForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    params = sum(p.numel() for p in GPT2ForSequenceClassification(config).parameters()) if dry else 774e6
    rows, scores = [], {}
    for dtype in ("float32", "bfloat16"):
        scorer = HFScorer(HFScorerConfig(path=str(folder), objective="reward", template="plain", dtype=dtype,
                                         device=device, batch_size=8 if dry else 32, max_length=512))
        scorer.score(prompts[:4], responses[:4])  # warm-up
        times = []
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            scores[dtype] = np.asarray(scorer.score(prompts, responses))
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        label = "tiny GPT-2" if dry else "GPT-2-large size"
        rows.append([f"reward model {params / 1e6:.1f}M params ({label}), {dtype}",
                     f"{len(prompts) / pc.median(times):.1f} responses/s", f"{pc.median(times):.2f} s"])
        del scorer
        if device == "cuda":
            torch.cuda.empty_cache()
    if not all(np.isfinite(s).all() for s in scores.values()):
        raise pc.BrokenRun("non-finite reward-model scores")
    corr = float(np.corrcoef(scores["float32"][:, 0], scores["bfloat16"][:, 0])[0, 1])
    rows.append(["bf16 vs fp32 scores", f"correlation {corr:.4f}",
                 f"speed-up {float(rows[0][2][:-2]) / float(rows[1][2][:-2]):.2f}x"])
    if corr < 0.9:
        raise pc.BrokenRun(f"bf16 scores correlate {corr:.3f} with fp32 scores")
    return rows


def bench_adapter(tok, prompts, dry: bool, device: str, repeats: int) -> list[list]:
    import torch
    from transformers import BertConfig, BertModel

    from preforch.adapter.model import AdapterMLP

    hidden = 32 if dry else 384
    enc = BertModel(BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2 if dry else 6,
                               num_attention_heads=2 if dry else 12, intermediate_size=4 * hidden)).to(device).eval()
    mlp = AdapterMLP(hidden, 3, 256, 2, 0.1, "gelu").to(device).eval()
    batch = tok(prompts, padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)

    @torch.inference_mode()
    def full():
        out = []
        for i in range(0, len(prompts), 64):
            ids, mask = batch["input_ids"][i:i + 64], batch["attention_mask"][i:i + 64]
            states = enc(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, T, D]
            m = mask.unsqueeze(-1).float()
            out.append(torch.softmax(mlp((states * m).sum(1) / m.sum(1)), -1))  # [B, K]
        return torch.cat(out)

    emb = torch.randn(len(prompts), hidden, device=device)

    @torch.inference_mode()
    def mlp_only():
        return torch.softmax(mlp(emb), -1)

    rows = []
    for name, fn in (("adapter: MiniLM-size encoder + MLP", full), ("adapter: MLP alone (prefill states)", mlp_only)):
        fn()
        times = []
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            w = fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        if not torch.allclose(w.sum(-1), torch.ones(len(prompts), device=device), atol=1e-4):
            raise pc.BrokenRun(f"{name}: weights not on the simplex")
        rows.append([name, f"{len(prompts) / pc.median(times):.0f} prompts/s", f"{pc.median(times):.4f} s"])
    return rows


def bench_grpo(tmp: Path, tok, prompts, dry: bool) -> list[list]:
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from preforch.align.config import GRPOJob
    from preforch.align.grpo import run_rl
    from preforch.rewards.callable import CallableScorer
    from preforch.rewards.normalize import Normalizer

    hidden = 32 if dry else 512
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2 if dry else 8, num_attention_heads=2 if dry else 8,
                         num_key_value_heads=1 if dry else 4, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tok.padding_side = "left"
    scorer = CallableScorer(lambda p, r: np.array([[len(x.split()), x.count("the")] for x in r], dtype=float),
                            ["words", "the"], "perf_gpu.toy:v1")
    norm = tmp / "normalizer.json"
    Normalizer(["words", "the"]).fit(np.random.default_rng(0).normal(size=(16, 2))).save(norm)
    job = GRPOJob(policy=str(tmp / "unused"), weight_mode="fixed", user_weights=[0.5, 0.5], normalizer=str(norm),
                  lora=False, max_steps=1 if dry else 2, per_device_train_batch_size=8, num_generations=4,
                  max_completion_length=16 if dry else 64, save_steps=10_000, output_dir=str(tmp / "grpo"),
                  progress=False)
    t0 = time.perf_counter()
    result = run_rl(job, scorer=scorer, policy=(model, tok), prompts=prompts[:8])
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    steps = job.max_steps
    return [[f"GRPO, random Llama {n_params / 1e6:.1f}M params, {steps} step(s) of 8 completions",
             f"{result.seconds / steps:.2f} s/step (incl. first-step warm-up)", f"{seconds:.1f} s total"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (automatic without CUDA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=None, help="responses / prompts per measurement")
    parser.add_argument("--skip", nargs="*", default=[], choices=["rm", "adapter", "grpo"])
    args = parser.parse_args()
    import torch

    from preforch.data.example import load_example

    dry = args.dry_run or not torch.cuda.is_available()
    device = "cpu" if dry else "cuda"
    pc.set_threads(None)
    n = args.n or (8 if dry else 512)
    data = load_example().subset(list(range(n)))
    card = "CPU dry run (tiny sizes; numbers mean nothing)" if dry else torch.cuda.get_device_name(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="perf_gpu_") as tmp:
        tmp = Path(tmp)
        texts = [p.text() for p in data.prompts]
        tok = word_tokenizer(texts + data.chosen, tmp / "tok", 2000 if dry else 30000)
        if "rm" not in args.skip:
            rows += bench_reward_model(tmp, tok, data.prompts, data.chosen, dry, device, args.repeats)
        if "adapter" not in args.skip:
            rows += bench_adapter(tok, texts, dry, device, args.repeats)
        if "grpo" not in args.skip:
            rows += bench_grpo(tmp, tok, data.prompts, dry)
    pc.print_table(f"GPU check on {card}, {n} example responses/prompts, median of {args.repeats}",
                   ["measure", "throughput", "time"], rows)
    return 0


if __name__ == "__main__":
    pc.run_main(main)
