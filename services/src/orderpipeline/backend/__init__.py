"""The FastAPI backend: serves the analytics stored in Couchbase to the dashboard.

Layout after fastapi/full-stack-fastapi-template: `main.py` builds the app, `api/routes/*`
hold the endpoints, `api/deps.py` the typed dependencies, `core/config.py` the settings.
"""


def run() -> int:
    """`orderpipeline backend`: serve until SIGTERM; returns the exit code."""
    from orderpipeline.backend.server import serve

    return serve()


__all__ = ["run"]
