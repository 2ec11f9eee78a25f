"""The OrderPipeline status: kstatus-style conditions computed from what was observed.

Pure functions. `build_status` keeps each condition's lastTransitionTime while its status
does not change, and `status_changed` lets the caller skip writes that change nothing,
so an unchanged pipeline causes no status writes and no flapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orderpipeline_operator.live_status import total_lag


@dataclass(frozen=True)
class WorkerState:
    deployment: str
    desired: int
    ready: int
    updated: int
    available: int
    current: bool  # the controller observed the latest template and finished the rollout

    @property
    def is_available(self) -> bool:
        return self.current and self.available >= self.desired and self.ready >= self.desired


@dataclass(frozen=True)
class WebappState:
    enabled: bool
    release: str
    revision: int = 0
    state: str = "absent"  # helm's status: deployed, failed, pending-upgrade, ... or absent
    values_checksum: str = ""
    # helm does not wait (the operator watches instead): every Deployment of the release
    # has rolled out its current template and is available.
    rolled_out: bool = True

    @property
    def is_deployed(self) -> bool:
        return not self.enabled or (self.state == "deployed" and self.rolled_out)


def worker_state(name: str, desired: int, deployment: Mapping[str, Any] | None) -> WorkerState:
    """Read a Deployment's status the way `kubectl rollout status` does."""
    if deployment is None:
        return WorkerState(name, desired, 0, 0, 0, current=False)
    meta, spec = deployment["metadata"], deployment.get("spec", {})
    st = deployment.get("status", {})
    replicas = int(spec.get("replicas", desired))
    updated = int(st.get("updatedReplicas", 0))
    current = (
        int(st.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
        and replicas == desired
        and updated >= replicas
        and int(st.get("replicas", 0)) == updated
    )
    return WorkerState(
        deployment=name,
        desired=desired,
        ready=int(st.get("readyReplicas", 0)),
        updated=updated,
        available=int(st.get("availableReplicas", 0)),
        current=current,
    )


def release_rolled_out(deployments: Iterable[Mapping[str, Any]]) -> bool:
    """Every Deployment of a release is current and available (and there is one at all)."""
    states = [
        worker_state("", int((d.get("spec") or {}).get("replicas", 1)), d) for d in deployments
    ]
    return bool(states) and all(s.is_available for s in states)


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def conditions(
    generation: int,
    workers: Mapping[str, WorkerState],
    webapp: WebappState,
    error: str | None,
    suspended: bool,
) -> list[dict[str, Any]]:
    waiting = sorted(n for n, w in workers.items() if not w.is_available)
    if webapp.enabled and webapp.state != "deployed":
        waiting.append(f"webapp release ({webapp.state})")
    elif not webapp.is_deployed:
        waiting.append("webapp Deployments")
    ready = not waiting and error is None
    if ready:
        ready_c = _condition(
            "Ready", True, "Ready", "All workers are available and the webapp is deployed",
            generation,
        )  # fmt: skip
    elif error is not None:
        ready_c = _condition("Ready", False, "ReconcileFailed", error, generation)
    else:
        ready_c = _condition(
            "Ready", False, "Progressing", f"Waiting for {', '.join(waiting)}", generation
        )
    if suspended:
        progressing = _condition(
            "Progressing", False, "Suspended", "spec.suspend is true: not reconciling", generation
        )
    else:
        progressing = _condition(
            "Progressing",
            not ready and error is None,
            "Reconciling" if not ready and error is None else "Reconciled",
            f"Waiting for {', '.join(waiting)}" if waiting and error is None else "",
            generation,
        )
    failed_release = webapp.enabled and webapp.state == "failed"
    degraded_msg = error or ("The webapp release failed" if failed_release else "")
    degraded = _condition(
        "Degraded",
        bool(degraded_msg),
        "ReconcileFailed" if error else "ReleaseFailed" if failed_release else "AsExpected",
        degraded_msg,
        generation,
    )
    return [ready_c, progressing, degraded]


def keep_transition_times(
    new: list[dict[str, Any]], old: list[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        stamp = before.get("lastTransitionTime") if same and before else None
        out.append({**cond, "lastTransitionTime": stamp or now})
    return out


def _count(workers: Mapping[str, WorkerState], names: tuple[str, ...]) -> str:
    chosen = [w for n, w in workers.items() if n in names]
    if not chosen:
        return "-"
    return f"{sum(min(w.ready, w.desired) for w in chosen)}/{sum(w.desired for w in chosen)}"


def build_status(
    generation: int,
    workers: Mapping[str, WorkerState],
    webapp: WebappState,
    error: str | None,
    suspended: bool,
    previous: Mapping[str, Any],
    now: datetime | None = None,
    consumers: Mapping[str, Any] | None = None,
    lagging: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`consumers` and `lagging`: the live part as the lag reader last wrote it
    (live_status.py), carried unchanged so that a reconcile does not drop it."""
    stamp = timestamp(now)
    conds = conditions(generation, workers, webapp, error, suspended)
    live = {"consumers": dict(consumers)} if consumers else {}
    return {
        **live,
        "observedGeneration": generation,
        "conditions": keep_transition_times(
            [*conds, *([dict(lagging)] if lagging else [])],
            previous.get("conditions") or [],
            stamp,
        ),
        "components": {
            name: {
                "deployment": w.deployment,
                "desired": w.desired,
                "ready": w.ready,
                "updated": w.updated,
                "available": w.available,
            }
            for name, w in workers.items()
        },
        "summary": {
            "producer": _count(workers, ("producer",)),
            "consumers": _count(workers, ("fraud", "payment", "analytics")),
            **({"lag": total_lag(consumers)} if consumers else {}),
        },
        "webapp": {
            "releaseName": webapp.release,
            "revision": webapp.revision,
            "state": webapp.state if webapp.enabled else "disabled",
            "valuesChecksum": webapp.values_checksum,
        },
        "lastError": error or "",
    }


def timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid_spec_status(
    generation: int, message: str, previous: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """A spec the models reject: Degraded with the reason, nothing reconciled until it changes.
    The rest of the status (components, webapp, consumers) stays as last observed."""
    kept = [c for c in previous.get("conditions") or [] if c.get("type") == "Lagging"]
    conds = [
        _condition("Ready", False, "InvalidSpec", message, generation),
        _condition("Progressing", False, "InvalidSpec", "", generation),
        _condition("Degraded", True, "InvalidSpec", message, generation),
        *(dict(c) for c in kept),
    ]
    return {
        "observedGeneration": generation,
        "conditions": keep_transition_times(
            conds, previous.get("conditions") or [], timestamp(now)
        ),
        "lastError": message,
    }


def status_changed(previous: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when a write would change anything (ignoring keys only kopf writes)."""
    return any(previous.get(key) != value for key, value in new.items())


def is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
