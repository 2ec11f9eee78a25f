"""What a real node leaves on the host besides network state, and removing it.

Containers outlive containerd (their shims are re-parented to init), so a node
that was SIGKILLed leaves processes, mounts (overlay rootfs, secret tmpfs,
network namespaces) and cgroups behind. Everything of ours is recognisable:
processes by our paths on their command line or by living in our cgroup root,
mounts by our folders, cgroups by CGROUP_ROOT. `leftovers()` lists what remains,
`remove_leftovers()` removes it; `make node-up` runs it first, so a killed run
never blocks the next one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devinfra import hostnet
from devinfra.nodeconfig import CGROUP_ROOT, NodeDirs

CGROUP_FS = Path("/sys/fs/cgroup")
STATE_PARENT = Path("/run")
STATE_PREFIX = "opl-node-"
NETNS_DIR = Path("/run/netns")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def known_dirs(dirs: NodeDirs) -> list[NodeDirs]:
    """`dirs` and every other node's folders still on the host.

    Each node records its root folder in its state folder under /run, so a node killed
    in one folder (a test's temporary one, say) is found from a node started in another.
    """
    found = {dirs.state: dirs}
    for state in STATE_PARENT.glob(STATE_PREFIX + "*"):
        root_file = state / "root"
        root = Path(root_file.read_text().strip()) if root_file.exists() else state
        found.setdefault(state, NodeDirs(root=root, state=state))
    return list(found.values())


def record_root(dirs: NodeDirs) -> None:
    dirs.state.mkdir(parents=True, exist_ok=True)
    (dirs.state / "root").write_text(str(dirs.root))


def _markers(dirs: NodeDirs) -> tuple[str, ...]:
    return tuple(m for d in known_dirs(dirs) for m in (str(d.root) + "/", str(d.state) + "/"))


def processes(dirs: NodeDirs) -> dict[int, str]:
    """Processes started for a node: by our folders on their command line, or by cgroup."""
    markers = _markers(dirs)
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        cmd = _cmdline(int(entry.name))
        if any(m in cmd for m in markers):
            found[int(entry.name)] = cmd.strip()
    for pid in _cgroup_tasks():
        found.setdefault(pid, _cmdline(pid).strip() or f"pid {pid}")
    return found


def cgroup_dirs() -> list[Path]:
    """Our cgroup folders in every v1 hierarchy (and the unified one), deepest first."""
    found: list[Path] = []
    for hierarchy in CGROUP_FS.iterdir() if CGROUP_FS.exists() else []:
        ours = hierarchy / CGROUP_ROOT.lstrip("/")
        if ours.is_dir():
            found += [Path(p) for p, _, _ in os.walk(ours)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _cgroup_tasks() -> set[int]:
    tasks: set[int] = set()
    for folder in cgroup_dirs():
        with contextlib.suppress(OSError):
            tasks |= {int(t) for t in (folder / "cgroup.procs").read_text().split()}
    return tasks


def mounts(dirs: NodeDirs) -> list[str]:
    """Mount points under our folders, and CNI network namespaces, deepest first."""
    prefixes = (*_markers(dirs), str(NETNS_DIR / "cni-"))
    points: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefixes) or any(point == p.rstrip("/") for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def leftovers(dirs: NodeDirs) -> list[str]:
    """Everything of the node still on the host; empty after a clean `down`."""
    found = [f"process {pid}: {cmd[:160]}" for pid, cmd in processes(dirs).items()]
    found += [f"mount {m}" for m in mounts(dirs)]
    found += [f"cgroup {c}" for c in cgroup_dirs()]
    found += [f"nftables {t}" for t in hostnet.nft_tables()]
    found += [f"interface {n}" for n in hostnet.links()]
    found += [f"route {r}" for r in hostnet.routes()]
    for family in ("ipv4", "ipv6"):
        found += [f"{family} rule {r}" for r in hostnet.guard_rules(family)]
    found += [f"netns {p}" for p in NETNS_DIR.glob("cni-*")]
    found += [f"state folder {d.state}" for d in known_dirs(dirs) if d.state.exists()]
    original = hostnet.ip_forward_original()
    if original is not None:
        found.append(f"ip_forward not restored yet (was {original}; {hostnet.HOST_STATE})")
    return found


def _kill_all(dirs: NodeDirs) -> None:
    # Thaw first: a frozen task cannot die.
    for folder in cgroup_dirs():
        if "freezer" in folder.parts:
            with contextlib.suppress(OSError):
                (folder / "freezer.state").write_text("THAWED")
    deadline = time.monotonic() + 15
    while (pids := processes(dirs)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_leftovers(dirs: NodeDirs) -> list[str]:
    """Kill, unmount, remove; returns what is still there afterwards."""
    _kill_all(dirs)
    for point in mounts(dirs):
        subprocess.run(["umount", "-l", point], capture_output=True)
    for netns in NETNS_DIR.glob("cni-*"):
        with contextlib.suppress(OSError):
            netns.unlink()
    for folder in cgroup_dirs():
        for _ in range(20):
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
    hostnet.delete_nft_tables()
    hostnet.teardown()
    for known in known_dirs(dirs):
        shutil.rmtree(known.state, ignore_errors=True)
    return leftovers(dirs)
