"""What serving and `preforch generate` share and training does not: best-of-N candidate ranking
(``best_of_n``), conditioning tags (``conditioning``, light), generating with a trained policy and loading its
``final/`` folder (``generation``), prefill reuse (``prefill``) and the served floor (``floor``, light). No trl or
peft here; importing the package itself loads nothing."""
