"""Entry point: `orderpipeline producer|fraud|payment|analytics|backend` (or `python -m`).

Each service module is imported only when chosen, so a worker does not load FastAPI or the
Couchbase SDK it does not use. Configuration comes from the environment (see docs/services.md).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence

SERVICES = {
    "producer": "publish generated orders to the orders topic",
    "fraud": "alert on suspicious orders (fraud-alerts)",
    "payment": "process each order's payment (payments)",
    "analytics": "store orders and aggregates in Couchbase",
    "backend": "serve the stored data over HTTP (FastAPI)",
}

USAGE = "usage: orderpipeline {" + "|".join(SERVICES) + "} [--help]"


def _docstring(service: str) -> str | None:
    """The service module's docstring, read without importing it (help stays instant)."""
    spec = importlib.util.find_spec(f"orderpipeline.{service}")
    if spec is None or spec.origin is None:
        return None
    with open(spec.origin, encoding="utf-8") as source:
        return ast.get_docstring(ast.parse(source.read()))


def _help(service: str | None = None) -> str:
    if service is not None:
        doc = (_docstring(service) or SERVICES[service]).strip()
        return (
            f"usage: orderpipeline {service}\n\n{doc}\n\n"
            "Configured by environment variables; see docs/services.md and docs/contracts.md."
        )
    lines = [USAGE, "", "services:"]
    lines += [f"  {name:<10} {text}" for name, text in SERVICES.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    service, rest = args[0], args[1:]
    if service not in SERVICES:
        print(f"unknown service {service!r}\n{USAGE}", file=sys.stderr)
        return 2
    if rest and rest[0] in ("-h", "--help"):
        print(_help(service))
        return 0
    if rest:
        print(
            f"orderpipeline {service} takes no arguments (configure it with environment "
            f"variables, see --help)",
            file=sys.stderr,
        )
        return 2
    if importlib.util.find_spec(f"orderpipeline.{service}") is None:
        print(f"service {service!r} is not installed in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(f"orderpipeline.{service}")
    code: int = module.run()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
