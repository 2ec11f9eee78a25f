"""Couchbase settings and the one cluster connection a process opens.

The original system opened a new connection on every backend request; here a process calls
`connect()` once and shares the returned handle (the SDK's Cluster is thread-safe).
The original variable `COUCHBASE_HOST` (a bare host name) is still accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_any,
    stop_never,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

_SCHEMES = ("couchbase://", "couchbases://")
# Scope and collection are always `_default` (see _open): no setting reaches them.
BUCKET_NAME_PATTERN = r"^[A-Za-z0-9._%-]+$"


def normalize_connection_string(value: str) -> str:
    """`cb.example.com` -> `couchbase://cb.example.com`; a URL with a scheme stays as it is.

    A bare Capella host (`*.cloud.couchbase.com`) gets TLS, as the original system did.
    """
    value = value.strip()
    if value.startswith(_SCHEMES):
        return value
    if "://" in value:
        raise ValueError("must start with couchbase:// or couchbases://")
    scheme = "couchbases://" if value.endswith("cloud.couchbase.com") else "couchbase://"
    return scheme + value


class CouchbaseSettings(BaseSettings):
    """`COUCHBASE_*` variables of the analytics service and the backend."""

    model_config = SettingsConfigDict(
        case_sensitive=False, populate_by_name=True, extra="ignore", frozen=True
    )

    connection_string: str = Field(
        "couchbase://127.0.0.1",
        min_length=1,
        validation_alias=AliasChoices("COUCHBASE_CONNECTION_STRING", "COUCHBASE_HOST"),
    )
    # Couchbase's own rule for bucket names (the CRD and the webapp chart check the same):
    # nothing else reaches the SDK, and the original system pasted this name into SQL++.
    bucket: str = Field(
        "order_analytics",
        pattern=BUCKET_NAME_PATTERN,
        max_length=100,
        validation_alias=AliasChoices("COUCHBASE_BUCKET"),
    )
    username: str = Field(
        "Administrator", min_length=1, validation_alias=AliasChoices("COUCHBASE_USERNAME")
    )
    password: SecretStr = Field(validation_alias=AliasChoices("COUCHBASE_PASSWORD"))
    # Short KV timeout: a stalled cluster must turn into a 503 or a back-off quickly,
    # not hold a request or a consumer batch for the SDK's default 2.5 s per operation.
    kv_timeout_seconds: float = Field(
        2.5, gt=0, validation_alias=AliasChoices("COUCHBASE_KV_TIMEOUT_SECONDS")
    )
    connect_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=AliasChoices("COUCHBASE_CONNECT_TIMEOUT_SECONDS")
    )

    @field_validator("connection_string")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_connection_string(value)


@dataclass(frozen=True)
class CouchbaseHandle:
    """The process's cluster and the collection every document lives in."""

    cluster: Any
    collection: Any

    def close(self) -> None:
        self.cluster.close()


def _open(settings: CouchbaseSettings) -> CouchbaseHandle:
    # Imported here so that modules which only need the settings do not load the SDK.
    from couchbase.auth import PasswordAuthenticator
    from couchbase.cluster import Cluster
    from couchbase.diagnostics import ServiceType
    from couchbase.options import ClusterOptions, ClusterTimeoutOptions, WaitUntilReadyOptions

    connect_timeout = timedelta(seconds=settings.connect_timeout_seconds)
    options = ClusterOptions(
        PasswordAuthenticator(settings.username, settings.password.get_secret_value()),
        timeout_options=ClusterTimeoutOptions(
            kv_timeout=timedelta(seconds=settings.kv_timeout_seconds),
            connect_timeout=connect_timeout,
            bootstrap_timeout=connect_timeout,
        ),
    )
    cluster = Cluster(settings.connection_string, options)
    try:
        bucket = cluster.bucket(settings.bucket)
        # Only KV is needed (and gocaves offers nothing else): do not wait for query et al.
        cluster.wait_until_ready(
            connect_timeout, WaitUntilReadyOptions(service_types=[ServiceType.KeyValue])
        )
        return CouchbaseHandle(cluster=cluster, collection=bucket.default_collection())
    except BaseException:
        cluster.close()
        raise


def _discard_result(sleep: Callable[[float], object]) -> Callable[[float], None]:
    def wrapped(seconds: float) -> None:
        sleep(seconds)

    return wrapped


class _StopWhen(stop_base):
    """Stop retrying once `predicate()` is true (the service was asked to stop)."""

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate()


def connect(
    settings: CouchbaseSettings,
    *,
    give_up_after: float | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> CouchbaseHandle:
    """Open the cluster, retrying with exponential back-off while it is unreachable.

    `give_up_after` seconds (None: never) bounds the retries; wrong credentials or a missing
    bucket fail at once, since retrying them would only hide the mistake. `on_retry(exc)` is
    called before each wait (for a log line). A service passes its stop flag as `sleep`
    (`StopFlag.wait`) and `should_stop`, so SIGTERM ends the waiting at once; it then gets
    the last error raised.
    """
    from couchbase.exceptions import (
        AuthenticationException,
        BucketNotFoundException,
        CouchbaseException,
    )

    def transient(exc: BaseException) -> bool:
        permanent = (AuthenticationException, BucketNotFoundException)
        return isinstance(exc, CouchbaseException) and not isinstance(exc, permanent)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc)

    retrying = Retrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential_jitter(initial=0.5, max=15.0),
        stop=stop_any(
            stop_never if give_up_after is None else stop_after_delay(give_up_after),
            _StopWhen(should_stop),
        ),
        sleep=_discard_result(sleep),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(_open, settings)
