"""The analytics consumer: every order stored once and counted once in Couchbase.

`consumer` is the loop (on core/session.py's Kafka session), `partitions` which partitions it
owns and where they resume, `plan` what a batch counts, `writer` its Couchbase writes (on a
thread of their own), `outage` the back-off while Couchbase is away, `totals` the running
totals it publishes. The aggregate math and documents are core/aggregate*.py (the backend
reads them too).
"""


def run() -> int:
    """`orderpipeline analytics`: consume until SIGTERM; returns the exit code."""
    # Imported on call so that readers of the documents (the backend) do not load Kafka.
    from orderpipeline.analytics.service import run as run_service

    return run_service()


__all__ = ["run"]
