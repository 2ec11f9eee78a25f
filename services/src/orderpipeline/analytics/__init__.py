"""The analytics consumer: every order stored once and counted once in Couchbase.

`aggregate` is the pure math, `store` the Couchbase documents, `consumer` the Kafka loop.
"""


def run() -> int:
    """`orderpipeline analytics`: consume until SIGTERM; returns the exit code."""
    # Imported on call so that readers of the documents (the backend) do not load Kafka.
    from orderpipeline.analytics.service import run as run_service

    return run_service()


__all__ = ["run"]
