"""The one CLI the operator runs: helm (pinned in the operator image).

helm does not wait for the release's resources (`--wait=hookOnly`): a kstatus watcher
per release held a helm slot and a thread for the whole rollout, and ran 20 of them
side by side. The operator watches the release's Deployments itself, and undoes a
failed revision itself (`rollback`, or `uninstall` of a first install): see
reconcile.ensure_webapp. (helm v4's `--rollback-on-failure` forces `--wait=watcher`.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orderpipeline_operator.metrics import HELM_RUNS

# helm's stderr can be long; status and Events get the end, which says what failed.
_ERROR_TAIL = 600


class HelmError(Exception):
    """helm exited non-zero; the message is the end of its stderr."""


@dataclass(frozen=True)
class Release:
    revision: int
    state: str  # deployed, failed, pending-install, pending-upgrade, ...
    modified_at: int = 0  # unix time of the revision's last change (0: not known)


def chart_digest(chart: Path) -> str:
    """A digest of every file of the chart: a new chart in a new image means an upgrade."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(chart)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class Helm:
    def __init__(self, binary: str, timeout_seconds: int, concurrency: int) -> None:
        self._binary = binary
        self._timeout = timeout_seconds
        self._slots = threading.BoundedSemaphore(concurrency)

    def _run(self, action: str, args: list[str]) -> str:
        with self._slots:
            proc = subprocess.run(
                [self._binary, *args],
                capture_output=True,
                text=True,
                # helm's own --timeout bounds the wait; this only catches a hung process.
                timeout=self._timeout + 60,
                env=os.environ.copy(),
                check=False,
            )
        HELM_RUNS.labels(action=action, result="ok" if proc.returncode == 0 else "error").inc()
        if proc.returncode != 0:
            raise HelmError(proc.stderr.strip()[-_ERROR_TAIL:] or f"helm {action} failed")
        return proc.stdout

    def upgrade(self, release: str, namespace: str, chart: Path, values: dict[str, Any]) -> Release:
        # Values hold references to Secrets only, never their content (see webapp_values).
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as handle:
            yaml.safe_dump(values, handle)
            handle.flush()
            out = self._run(
                "upgrade",
                [
                    "upgrade", release, str(chart),
                    "--install",
                    "--namespace", namespace,
                    "--values", handle.name,
                    "--reset-values",
                    "--wait=hookOnly",
                    "--timeout", f"{self._timeout}s",
                    "--history-max", "5",
                    "--output", "json",
                ],
            )  # fmt: skip
        info = json.loads(out)
        return Release(revision=int(info["version"]), state=str(info["info"]["status"]))

    def rollback(self, release: str, namespace: str) -> None:
        """Back to the previous revision: out of a failed or stale pending revision."""
        self._run(
            "rollback",
            [
                "rollback", release,
                "--namespace", namespace,
                "--wait=hookOnly",
                "--timeout", f"{self._timeout}s",
            ],
        )  # fmt: skip

    def uninstall(self, release: str, namespace: str) -> None:
        self._run(
            "uninstall",
            [
                "uninstall", release,
                "--namespace", namespace,
                "--ignore-not-found",
                "--wait=watcher",
                "--timeout", f"{self._timeout}s",
            ],
        )  # fmt: skip
