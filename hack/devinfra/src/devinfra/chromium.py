"""How headless Chromium runs on these machines (tests, benchmarks, screenshots)."""

from __future__ import annotations

# No sandbox (root), no GPU, and no background networking, whose connections the
# closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def host_resolver_args(host: str, address: str) -> list[str]:
    """Resolve `host` to `address` inside Chromium only, as a hosts-file line would."""
    return [f"--host-resolver-rules=MAP {host} {address}"]
