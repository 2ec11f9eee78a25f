"""The fraud rule, shared by the fraud service (which alerts) and analytics (which counts).

The original's rule, configurable: an order is suspicious when its amount is strictly above
FRAUD_AMOUNT_THRESHOLD and its country is not in FRAUD_TRUSTED_COUNTRIES. Both services read
the same variables, so they always apply the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orderpipeline.core.order import Order

REASON = "HIGH_AMOUNT_RISKY_COUNTRY"


@dataclass(frozen=True)
class FraudRule:
    """The fraud rule's parameters."""

    amount_threshold: float = 300.0
    trusted_countries: frozenset[str] = frozenset({"US", "CA"})


def is_suspicious(order: Order, rule: FraudRule) -> bool:
    """Amount strictly above the threshold and a country that is not trusted."""
    return order.amount > rule.amount_threshold and order.country not in rule.trusted_countries


class FraudRuleSettings(BaseSettings):
    """`FRAUD_AMOUNT_THRESHOLD` and `FRAUD_TRUSTED_COUNTRIES`."""

    model_config = SettingsConfigDict(
        case_sensitive=False, populate_by_name=True, extra="ignore", frozen=True
    )

    amount_threshold: float = Field(
        300.0, ge=0, allow_inf_nan=False, validation_alias="FRAUD_AMOUNT_THRESHOLD"
    )
    trusted_countries: Annotated[frozenset[str], NoDecode] = Field(
        frozenset({"US", "CA"}), validation_alias="FRAUD_TRUSTED_COUNTRIES"
    )

    @field_validator("trusted_countries", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(c.strip().upper() for c in value.split(",") if c.strip())
        return value

    @property
    def fraud_rule(self) -> FraudRule:
        return FraudRule(self.amount_threshold, self.trusted_countries)
