"""The pipeline's consumer groups as Kafka knows them: which group reads which topics.

The services' defaults (services/src/orderpipeline: FRAUD_GROUP_ID, PAYMENT_GROUP_ID,
ANALYTICS_GROUP_ID; the operator does not override them). Only these topics count towards a
group's lag: other topics on the cluster, even ones the group once read, never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orderpipeline_operator.spec import Autoscaling, PipelineSpec

# The services' consumers start from the beginning of a partition they never committed
# (services/src/orderpipeline/core/kafka.py: auto.offset.reset=earliest).
ResetPolicy = Literal["earliest", "latest"]


@dataclass(frozen=True)
class ConsumerGroup:
    name: str  # the worker: fraud, payment, analytics
    group_id: str
    topics: tuple[str, ...]
    autoscaling: Autoscaling
    replicas: int  # spec.<name>.replicas: the count when autoscaling is off
    reset: ResetPolicy = "earliest"


def consumer_groups(spec: PipelineSpec) -> list[ConsumerGroup]:
    topics = spec.kafka.topics
    return [
        ConsumerGroup(
            "fraud", "fraud-group", (topics.orders,), spec.fraud.autoscaling, spec.fraud.replicas
        ),
        ConsumerGroup(
            "payment",
            "payments-group",
            (topics.orders,),
            spec.payment.autoscaling,
            spec.payment.replicas,
        ),
        ConsumerGroup(
            "analytics",
            "analytics-group",
            (topics.orders, topics.payments),
            spec.analytics.autoscaling,
            spec.analytics.replicas,
        ),
    ]


CONSUMERS = ("fraud", "payment", "analytics")
