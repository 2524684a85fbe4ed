"""Policy training with prompt-aware weights: GRPO/RLOO reward functions, DPO pairs, reward-conditioned SFT.
This is the only package that imports trl, and only inside the modules that need them: importing
``preforch.align`` itself stays light. Inference with a trained policy lives in :mod:`preforch.infer`."""
