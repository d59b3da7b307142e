"""The agent's REST API (FastAPI), under /api/v1 as in formae; OpenAPI at /openapi.json."""

from formae.api.app import AgentServices, build_app

__all__ = ["AgentServices", "build_app"]
