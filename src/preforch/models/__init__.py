"""The embedded offline defaults: the MiniLM encoder, the SmolLM2 policy and the built-in reward heads."""
