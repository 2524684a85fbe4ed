"""preforch: prompt-aware multi-objective alignment (PRO, the Preference Orchestrator)."""

__version__ = "0.1.0"
