"""The serving component: a FastAPI app for prompt-aware weights, scores and OpenAI-compatible chat.

Only this package imports fastapi and uvicorn, and only inside ``app.py`` / ``server.py`` (imported on use).
"""

from preforch.serve.config import ServeConfig

__all__ = ["ServeConfig"]
