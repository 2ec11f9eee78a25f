"""A screenshot of the live dashboard, for a machine without a display.

    .venv/bin/python -m devinfra.screenshot http://orders.local/ dashboard.png \\
        --resolve orders.local=198.19.255.1

Chromium's own `--screenshot` fires at the load event, before the first data arrives
over the live stream; this waits until the page says it is live, as a person would.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from devinfra.chromium import CHROMIUM_ARGS, host_resolver_args
from devinfra.dashboard_page import LIVE
from devinfra.toolchain import Toolchain


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("--resolve", help="HOST=ADDRESS, as a hosts-file line would")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for live data")
    args = parser.parse_args(argv)
    flags = list(CHROMIUM_ARGS)
    if args.resolve:
        host, _, address = args.resolve.partition("=")
        flags += host_resolver_args(host, address)
    Toolchain.load().require("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(Toolchain.load().chromium), args=flags
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(args.url)
            page.wait_for_selector(LIVE, timeout=args.timeout * 1000)
            page.wait_for_selector('[data-testid="order-row"]', timeout=args.timeout * 1000)
            page.screenshot(path=args.path, full_page=True)
        finally:
            browser.close()
    print(f"{urlsplit(args.url).netloc}: live; screenshot in {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
