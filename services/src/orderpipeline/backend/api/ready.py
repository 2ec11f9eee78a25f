"""A JSON answer whose bytes are ready before the request, in the encoding the request accepts.

The feed encodes each snapshot's body once, plain and gzipped (feed.py); a request only picks
one by its Accept-Encoding and copies it out.
"""

from __future__ import annotations

import functools

from starlette.types import Scope, Send

JSON = (b"content-type", b"application/json")
# The body depends on the request's Accept-Encoding: caches must key on it.
VARY = (b"vary", b"accept-encoding")
GZIP = (b"content-encoding", b"gzip")


async def send_json(scope: Scope, send: Send, body: bytes, body_gzip: bytes) -> None:
    """A 200 with a JSON body given in both encodings: gzipped when the request accepts it
    (browsers do), and without a body for a HEAD request."""
    if accepts_gzip(scope):
        body, headers = body_gzip, [JSON, VARY, GZIP]
    else:
        headers = [JSON, VARY]
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def accepts_gzip(scope: Scope) -> bool:
    """Whether the request's Accept-Encoding allows gzip (RFC 9110, 12.5.3): named, or covered
    by "*", and not with q=0. No header means any coding, but then identity is served, as
    the RFC advises for clients that say nothing."""
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return _allows_gzip(value)
    return False


# Clients send few distinct values (a browser always the same one), and parsing one costs
# more than the rest of the answer. Bounded: odd values only evict each other.
@functools.lru_cache(maxsize=256)
def _allows_gzip(header: bytes) -> bool:
    accept_encoding = header.decode("latin-1")
    star: bool | None = None
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        allowed = _quality(params) > 0
        if coding in ("gzip", "x-gzip"):
            return allowed
        if coding == "*":
            star = allowed
    return bool(star)


def _quality(params: list[str]) -> float:
    """The q parameter (1 when absent); an unreadable one counts as 0: serve identity."""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
