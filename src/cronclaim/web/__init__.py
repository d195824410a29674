"""The dashboard: server-rendered pages of every occurrence, and replay from the browser.

``create_app(store, jobs=..., token=...)`` builds the Starlette application;
``cronclaim dashboard --app module:app`` serves it with uvicorn on 127.0.0.1.
"""

from cronclaim.web.app import create_app

__all__ = ["create_app"]
