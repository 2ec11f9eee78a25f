"""Entry point: `orderpipeline <service>`."""

import sys


def main() -> int:
    print("usage: orderpipeline producer|fraud|payment|analytics|backend", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
