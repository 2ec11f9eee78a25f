"""`orderpipeline analytics`: connect to Couchbase once, then run the consumer loop."""

from __future__ import annotations

import gc

from orderpipeline.analytics.consumer import AnalyticsConsumer
from orderpipeline.analytics.settings import AnalyticsSettings
from orderpipeline.core.aggregate_store import AnalyticsStore
from orderpipeline.core.couchbase import connect
from orderpipeline.core.exit_codes import EXIT_CONFIG, EXIT_OK
from orderpipeline.core.logging import get_logger
from orderpipeline.core.runner import ServiceContext, run_service


def _main(settings: AnalyticsSettings, ctx: ServiceContext) -> int:
    from couchbase.exceptions import AuthenticationException, BucketNotFoundException

    log = get_logger(ctx.name)

    def waiting(exc: BaseException) -> None:
        ctx.health.beat()
        ctx.health.set_ready(False, "connecting to couchbase")
        log.warning("waiting for couchbase", error=type(exc).__name__)

    try:
        handle = connect(
            settings, on_retry=waiting, sleep=ctx.stop.wait, should_stop=ctx.stop.is_set
        )
    except (AuthenticationException, BucketNotFoundException) as exc:
        log.error(
            "cannot use couchbase: check COUCHBASE_USERNAME, COUCHBASE_PASSWORD and "
            "COUCHBASE_BUCKET",
            error=type(exc).__name__,
        )
        return EXIT_CONFIG
    except Exception:
        if ctx.stop.is_set():
            return EXIT_OK
        raise
    log.info("connected to couchbase", bucket=settings.bucket)
    ctx.health.set_ready(True)
    _tune_gc()
    try:
        return AnalyticsConsumer(settings, ctx, AnalyticsStore(handle.collection)).run()
    finally:
        handle.close()


def _tune_gc() -> None:
    """Fewer cyclic-GC passes. The loop allocates ~10 objects an order (messages, parsed
    orders, claims, records) and refcounting frees them all; the default thresholds still
    ran a collection every 700 allocations, ~100 per 2000-order batch, some over the whole
    heap: ~20% of the loop's CPU (plan_batch + sum_ahead + combine per order, best of 5:
    11.4-13.0 us with the defaults, 9.5-9.8 us with these). What is loaded by now (modules,
    the SDK, settings) lives as long as the process: frozen, so no pass walks it again."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run() -> int:
    """Entry point of `orderpipeline analytics`."""
    return run_service("analytics", AnalyticsSettings, _main)
