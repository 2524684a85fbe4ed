"""Issue 7, target 4: the preference adapter's cost at deployment next to generating 64 new tokens for the same
batch of prompts with the embedded policy (SmolLM2-135M-Instruct). Adapters: MiniLM sentence encoder + MLP;
the policy's own last-prompt-token state (``causal_lm``) with a second prompt pass; and the same state taken
from generation's prefill (``generate_with_prompt_states``), where the added cost is the MLP alone.
All cases run interleaved in one process, median of ``--repeats``. Prints one table.

    .venv/bin/python benchmarks/perf_adapter.py [--batch 8] [--new-tokens 64] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse

import perf_common as pc


def random_adapter(encoder, objectives: list[str], seed: int = 0):
    """A PreferenceAdapter with a randomly initialised MLP of the default size on ``encoder``."""
    import numpy as np
    import torch

    from preforch.adapter import AdapterConfig, PreferenceAdapter
    from preforch.rewards.normalize import Normalizer

    torch.manual_seed(seed)
    normalizer = Normalizer(objectives).fit(np.random.default_rng(seed).normal(size=(16, len(objectives))))
    kind = "causal_lm" if hasattr(encoder, "layer") else "sentence"
    return PreferenceAdapter(AdapterConfig(encoder=kind), objectives, normalizer, encoder.dim, encoder=encoder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="prompts in the batch")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--policy", default=None, help="policy folder (default: the embedded SmolLM2)")
    parser.add_argument("--encoder-path", default=None, help="sentence encoder folder (default: MiniLM)")
    parser.add_argument("--max-prompt-length", type=int, default=256, help="prompt tokens kept (both paths)")
    args = parser.parse_args()
    import numpy as np

    from preforch.data.example import load_example
    from preforch.models.encoders import CausalLMEncoder, load_encoder
    from preforch.models.generation import (
        GenerationConfig,
        generate_with_config,
        generate_with_prompt_states,
        load_policy,
    )
    from preforch.models.policy import prepare_policy

    threads = pc.set_threads(args.threads)

    path = args.policy or str(prepare_policy())
    model, tok = load_policy(path)
    # every reply is exactly --new-tokens long, so the generation cost does not depend on when EOS comes
    model.generation_config.min_new_tokens = args.new_tokens
    prompts = load_example().prompts[: args.batch]
    config = GenerationConfig(max_new_tokens=args.new_tokens, batch_size=args.batch, seed=0,
                              max_prompt_length=args.max_prompt_length)
    objectives = ["harmless", "helpful", "humor"]
    sentence = random_adapter(load_encoder("sentence", args.encoder_path), objectives)
    causal_encoder = CausalLMEncoder(path, max_length=args.max_prompt_length)
    causal_encoder.model = model  # the same weights in memory, as at deployment
    causal = random_adapter(causal_encoder, objectives)
    states = {}

    def gen_with_states():
        out = generate_with_prompt_states(model, tok, prompts, config)
        states["last"] = out.prompt_states
        return out.texts

    cases = {
        f"generate {args.new_tokens} new tokens": lambda: generate_with_config(model, tok, prompts, config),
        "generate + keep prefill states": gen_with_states,
        "adapter: MiniLM + MLP (predict_weights)": lambda: sentence.predict_weights(prompts),
        "adapter: policy prompt pass + MLP": lambda: causal.predict_weights(prompts),
        "adapter: MLP on prefill states": lambda: causal.predict_from_embeddings(states["last"]),
    }
    times, outs = pc.interleaved(cases, args.repeats)
    texts = outs[f"generate {args.new_tokens} new tokens"]
    if outs["generate + keep prefill states"] != texts:
        raise pc.BrokenRun("keeping the prefill states changed the generated replies")
    reused = outs["adapter: MLP on prefill states"].numpy()
    separate = outs["adapter: policy prompt pass + MLP"]
    if not np.allclose(reused, separate, atol=1e-4):
        raise pc.BrokenRun(f"weights from prefill states differ from the separate pass by "
                           f"{np.abs(reused - separate).max():.3g}")
    for name in ("adapter: MiniLM + MLP (predict_weights)", "adapter: policy prompt pass + MLP"):
        w = np.asarray(outs[name])
        if w.shape != (len(prompts), 3) or not np.allclose(w.sum(1), 1.0, atol=1e-5):
            raise pc.BrokenRun(f"{name}: weights of shape {w.shape} not on the simplex")
    med = {k: pc.median(v) for k, v in times.items()}
    gen_name = f"generate {args.new_tokens} new tokens"
    rows = []
    for name, seconds in med.items():
        share = "" if name == gen_name else f"{100 * pc.ratio_median(times, name, gen_name):.2f}% (target <= 2%)"
        if name == "generate + keep prefill states":
            share = f"added {100 * (pc.ratio_median(times, name, gen_name) - 1):+.2f}% (noise level)"
        rows.append([name, f"{1000 * seconds:.1f}", share])
    n_tok = [len(t) for t in tok([p.text() for p in prompts])["input_ids"]]
    pc.print_table(
        f"Adapter overhead at deployment, {len(prompts)} example prompts, SmolLM2-135M-Instruct, "
        f"{args.new_tokens} new tokens each, {threads} threads, median of {args.repeats}",
        ["case", "median ms", "share of generation (median of per-repetition ratios)"], rows,
        [f"prompt tokens: mean {np.mean(n_tok):.0f}, max {max(n_tok)} (kept: last {args.max_prompt_length}); "
         f"weights from prefill states equal the separate policy pass to 1e-4 (checked)"])
    return 0


if __name__ == "__main__":
    pc.run_main(main)
