"""BASELINE backend: the original design, for comparison only.

Every request opens a new Couchbase connection (defect 5) and reads ten orders with it (the
original ran `SELECT * ... LIMIT 10`, which gocaves cannot answer; ten KV gets stand in).
Run: `python -m bench.baseline.backend_baseline PORT` with COUCHBASE_* in the environment and
BASELINE_ORDER_IDS (comma-separated) naming the orders to read.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

from fastapi import FastAPI


def create_app() -> FastAPI:
    from couchbase.auth import PasswordAuthenticator
    from couchbase.cluster import Cluster
    from couchbase.options import ClusterOptions, ClusterTimeoutOptions

    app = FastAPI()
    ids = os.environ["BASELINE_ORDER_IDS"].split(",")[:10]

    @app.get("/api/analytics")
    def get_analytics() -> dict[str, Any]:
        try:
            cluster = Cluster(
                os.environ["COUCHBASE_CONNECTION_STRING"],
                ClusterOptions(
                    PasswordAuthenticator(
                        os.environ["COUCHBASE_USERNAME"], os.environ["COUCHBASE_PASSWORD"]
                    ),
                    timeout_options=ClusterTimeoutOptions(kv_timeout=timedelta(seconds=5)),
                ),
            )
            collection = cluster.bucket(os.environ["COUCHBASE_BUCKET"]).default_collection()
            orders = [collection.get(key).content_as[dict] for key in ids]
            cluster.close()
            return {"status": "ok", "orders": orders}
        except Exception as exc:  # the original's defect 6: errors as HTTP 200
            return {"error": str(exc)}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
