"""One conversation, one set of weights, whichever route asks: `preforch weights --messages`, the server's
/v1/weights, the weights GRPO/RLOO and DPO put on their prompts (resolve_weights and the GRPO dataset column) and
best-of-N, each given the conversation in another shape."""

from __future__ import annotations

import json

import numpy as np

HISTORY = [{"role": "system", "content": "Be brief."},
           {"role": "user", "content": "I need help with my garden."},
           {"role": "assistant", "content": "Sure, what would you like to grow?"},
           {"role": "user", "content": "Tomatoes. How often should I water them?"}]
HH = ("\n\nHuman: I need help with my garden.\n\nAssistant: Sure, what would you like to grow?"
      "\n\nHuman: Tomatoes. How often should I water them?\n\nAssistant:")


def test_every_route_gets_the_same_weights(client, engine, serve_adapter_dir, capsys):
    from preforch.align.grpo import build_prompt_dataset
    from preforch.align.rewards import WEIGHTS_COLUMN
    from preforch.cli.main import main
    from preforch.conversation import as_conversations
    from preforch.infer.best_of_n import best_of_n
    from preforch.weighting import Weighting, resolve_weights

    objectives = engine.objectives
    reference = engine.adapter.predict_weights([HISTORY])[0]  # [K]
    assert reference.max() < 0.999  # not a degenerate one-hot

    assert main(["weights", "--adapter", str(serve_adapter_dir), "--messages", json.dumps(HISTORY)]) == 0
    cli = json.loads(capsys.readouterr().out.splitlines()[0])["weights"]

    body = client.post("/v1/weights", json={"prompts": [HISTORY]}).json()
    server = body["data"][0]["weights"]

    convs = as_conversations([HH])  # the HH rendering: GRPO / RLOO / DPO read prompts from data files this way
    rl = resolve_weights(convs, objectives, Weighting("adapter"), engine.adapter).weights[0]
    column = build_prompt_dataset(convs, rl[None], chat=True)[WEIGHTS_COLUMN][0]

    bon = best_of_n([HISTORY], engine.policy, engine.scorer, 2, adapter=engine.adapter,
                    weighting=Weighting("adapter")).weights[0]

    for name, got in {"weights CLI": [cli[o] for o in objectives], "/v1/weights": [server[o] for o in objectives],
                      "GRPO/DPO resolve_weights": rl, "GRPO dataset column": column, "best-of-N": bon}.items():
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), reference, atol=1e-6, err_msg=name)
