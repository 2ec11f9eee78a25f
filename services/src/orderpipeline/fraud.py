"""Fraud service: reads every order (group `fraud-group`) and publishes an alert for each
suspicious one to `fraud-alerts`, keyed by order_id.

The rule lives in core/fraud_rule.py: analytics counts with the same one.
"""

from __future__ import annotations

import json

from pydantic import Field

from orderpipeline.core.config import WorkerSettings
from orderpipeline.core.fraud_rule import REASON, FraudRule, FraudRuleSettings, is_suspicious
from orderpipeline.core.offsets import Batch
from orderpipeline.core.order import Order, format_timestamp, utc_now
from orderpipeline.core.runner import ServiceContext, run_service
from orderpipeline.core.worker import ConsumerWorker, Emit


class FraudSettings(WorkerSettings, FraudRuleSettings):
    group_id: str = Field("fraud-group", min_length=1, validation_alias="FRAUD_GROUP_ID")


def alert_json(order: Order, detected_at: str) -> bytes:
    """The alert. `created_at` is the order's, so a redelivered order yields the same alert.

    Formatted directly (hot path): country and currency are validated codes, the amount a
    finite float whose repr is valid JSON; only the order id needs JSON escaping.
    """
    return (
        f'{{"order_id":{json.dumps(order.order_id)},"reason":"{REASON}",'
        f'"amount":{order.amount!r},"country":"{order.country}",'
        f'"currency":"{order.currency}","created_at":"{format_timestamp(order.created_at)}",'
        f'"detected_at":"{detected_at}"}}'
    ).encode()


class FraudHandler:
    """Emits an alert per suspicious order, at once (nothing is scheduled for later)."""

    def __init__(self, rule: FraudRule, alerts_topic: str) -> None:
        self.rule = rule
        self.alerts_topic = alerts_topic

    def process(self, order: Order, batch: Batch, emit: Emit) -> None:
        if is_suspicious(order, self.rule):
            emit(self.alerts_topic, order.order_id, alert_json(order, utc_now()), batch)


def _main(settings: FraudSettings, ctx: ServiceContext) -> int:
    handler = FraudHandler(settings.fraud_rule, settings.fraud_alerts_topic)
    return ConsumerWorker(settings, ctx, settings.group_id, handler).run()


def run() -> int:
    """Entry point of `orderpipeline fraud`."""
    return run_service("fraud", FraudSettings, _main)
