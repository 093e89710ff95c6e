"""The investigators' web UI and HTTP API: FastAPI, server-rendered pages, one store."""

from __future__ import annotations

from molehunt.web.app import create_app

__all__ = ["create_app"]
