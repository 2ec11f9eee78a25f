"""The host side of the real node's network: bridges, routes and the guard.

Everything here is ours by name (bridges `opl-*`, the iptables chain
OPL-NODE-GUARD) or by range (198.18.0.0/15), so tearing it down never touches
anything else on the machine, and `leftovers()` can prove nothing remains.

Guarantees while the node runs:
- the node range is routed to our bridges or nowhere (an `unreachable` route
  catches what no bridge holds), never to the machine's uplink;
- the FORWARD guard drops anything forwarded between our pod bridge and any
  other interface, so turning on `ip_forward` (pods need the host to route
  between them and Services) cannot route a pod's packet off the machine;
- `ip_forward` goes back to the value it had before the first `up`.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

from devinfra.nodeconfig import NODE_BRIDGE, NODE_IP, NODE_RANGE, POD_BRIDGE, SERVICE_CIDR

GUARD_CHAIN = "OPL-NODE-GUARD"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
OUR_LINK_PREFIX = "opl-"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout}")
    return result


def links() -> list[str]:
    """Our interfaces that exist now (bridges, and the veths CNI left on them)."""
    out = run("ip", "-o", "link", "show").stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    ours = [n for n in names if n.startswith(OUR_LINK_PREFIX)]
    for bridge in (NODE_BRIDGE, POD_BRIDGE):
        if bridge in ours:
            members = run("ip", "-o", "link", "show", "master", bridge, check=False).stdout
            ours += [line.split(":")[1].strip().split("@")[0] for line in members.splitlines()]
    return ours


def routes() -> list[str]:
    """Routes into the node range (ours, whoever added them)."""
    out = run("ip", "route", "show", "table", "all").stdout.splitlines()
    return [r for r in out if r.split()[0:2] and _in_node_range(r)]


def _in_node_range(route: str) -> bool:
    words = route.split()
    target = (
        words[1] if words[0] in ("unreachable", "blackhole", "local", "broadcast") else words[0]
    )
    return target.startswith(("198.18.", "198.19."))


def guard_rules(family: str) -> list[str]:
    tool = "iptables" if family == "ipv4" else "ip6tables"
    out = run(tool, "-S", check=False).stdout.splitlines()
    return [r for r in out if GUARD_CHAIN in r]


def _guard_commands(tool: str) -> list[list[str]]:
    rules = [
        # Pod to pod across our bridge (seen here through br_netfilter): allowed.
        ["-A", GUARD_CHAIN, "-i", POD_BRIDGE, "-o", POD_BRIDGE, "-j", "RETURN"],
        # Anything else into or out of the pod bridge would cross interfaces: drop.
        ["-A", GUARD_CHAIN, "-i", POD_BRIDGE, "-j", "DROP"],
        ["-A", GUARD_CHAIN, "-o", POD_BRIDGE, "-j", "DROP"],
        ["-A", GUARD_CHAIN, "-i", NODE_BRIDGE, "-j", "DROP"],
        ["-A", GUARD_CHAIN, "-o", NODE_BRIDGE, "-j", "DROP"],
    ]
    if tool == "iptables":
        # And by address, whatever the interface: the node range never crosses.
        rules += [
            ["-A", GUARD_CHAIN, "-s", NODE_RANGE, "-j", "DROP"],
            ["-A", GUARD_CHAIN, "-d", NODE_RANGE, "-j", "DROP"],
        ]
    return (
        [[tool, "-N", GUARD_CHAIN]]
        + [[tool, *r] for r in rules]
        + [[tool, "-I", "FORWARD", "1", "-j", GUARD_CHAIN]]
    )


#: What the host had before the first node started (ip_forward). One file for the
#: machine, not per node folder: a node killed in one folder and started in another
#: must still restore the value from before either.
HOST_STATE = Path("/run/orderpipeline-node-host.json")


def setup() -> None:
    """Bridges, routes, guard and forwarding for the node."""
    state = HOST_STATE
    if not state.exists():
        state.write_text(json.dumps({"ip_forward": IP_FORWARD.read_text().strip()}))
    for tool in ("iptables", "ip6tables"):
        for cmd in _guard_commands(tool):
            run(*cmd)
    run("ip", "link", "add", NODE_BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE)
    run("ip", "link", "set", NODE_BRIDGE, "up")
    run("ip", "route", "add", SERVICE_CIDR, "dev", NODE_BRIDGE, "src", NODE_IP)
    run("ip", "route", "add", "unreachable", NODE_RANGE, "metric", "4000")
    # Only now, with the guard in place: the host routes between pods and Services.
    IP_FORWARD.write_text("1\n")


def teardown() -> list[str]:
    """Remove everything `setup` and CNI made; returns what could not be removed."""
    problems: list[str] = []
    for tool in ("iptables", "ip6tables"):
        run(tool, "-D", "FORWARD", "-j", GUARD_CHAIN, check=False)
        run(tool, "-F", GUARD_CHAIN, check=False)
        run(tool, "-X", GUARD_CHAIN, check=False)
    for name in reversed(links()):
        run("ip", "link", "delete", name, check=False)
    for route in routes():
        run("ip", "route", "del", *route.split(), check=False)
    state = HOST_STATE
    if state.exists():
        original = json.loads(state.read_text())["ip_forward"]
        IP_FORWARD.write_text(original + "\n")
        state.unlink()
    problems += [f"interface {n}" for n in links()]
    problems += [f"route {r}" for r in routes()]
    for family in ("ipv4", "ipv6"):
        problems += [f"{family} rule {r}" for r in guard_rules(family)]
    return problems


def nft_tables() -> list[str]:
    """kube-proxy's nftables tables, if any remain."""
    out = run("nft", "list", "tables", check=False).stdout.splitlines()
    return [t for t in out if t.split()[-1] == "kube-proxy"]


def delete_nft_tables() -> None:
    for table in nft_tables():
        family, name = table.split()[1:3]
        with contextlib.suppress(RuntimeError):
            run("nft", "delete", "table", family, name)


def ip_forward_original() -> str | None:
    """The value to restore, while a node (or its leftovers) holds the host."""
    state = HOST_STATE
    return str(json.loads(state.read_text())["ip_forward"]) if state.exists() else None
