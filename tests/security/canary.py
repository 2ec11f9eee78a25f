"""Canary secrets and the search for them: a random value planted as a credential must never
show up anywhere a reader without access to the Secret can look."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping


def new_canary(label: str) -> str:
    """A value that cannot occur by chance (and is easy to spot in a failure message)."""
    return f"canary-{label}-{secrets.token_hex(12)}"


def encodings(value: str) -> list[str]:
    """The forms a leaked secret could take: as is, base64 (a Secret's data), JSON-escaped."""
    raw = value.encode()
    return [
        value,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        json.dumps(value)[1:-1],
    ]


def leaks(places: Mapping[str, str], canaries: Iterable[str]) -> list[str]:
    """`place: canary` for every canary (in any encoding) found in a place's text."""
    found = []
    for canary in canaries:
        for place, text in places.items():
            if any(form in text for form in encodings(canary)):
                found.append(f"{place}: {canary}")
    return found


def http_text(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Status and body of a GET (an error status is a result, not an exception)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def decode_helm_release(data: str) -> str:
    """The JSON of a helm release record stored in a Secret's `release` key.

    Kubernetes base64-encodes the Secret data; helm stores base64(gzip(json)) in it.
    """
    payload = base64.b64decode(base64.b64decode(data))
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    return payload.decode()
