"""The user's journey on a real kubelet: real containers of our own images, from
`helm install` of the operator to live orders in Chromium at http://orders.local/.

One node and one pipeline for the module (starting them is the slow part); the tests run
in file order and each adds to what the previous one left, as a person would.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devinfra.chromium import CHROMIUM_ARGS, host_resolver_args
from devinfra.dashboard_page import KPI_FIELDS, kpi_values
from devinfra.journey import HOST, OPERATOR_NAMESPACE, PIPELINE, Journey
from devinfra.node import RealNode
from devinfra.nodeconfig import DNS_SERVICE_IP, NODE_IP
from devinfra.procs import wait_for
from devinfra.toolchain import Toolchain
from orderpipeline.core.order import new_order_id
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.node, pytest.mark.browser, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def journey(real_node: RealNode) -> Journey:
    """The README's commands: helm install the operator, the dev infra, the sample."""
    j = Journey(real_node)
    j.install()
    return j


@pytest.fixture
def node_page(browser: Browser, toolchain: Toolchain) -> Iterator[Page]:
    """Chromium resolving orders.local to the ingress address, as a hosts-file line would.

    A second browser from the session's Playwright: the resolver rule is a launch flag.
    """
    chromium = browser.browser_type.launch(
        executable_path=str(toolchain.chromium),
        args=[*CHROMIUM_ARGS, *host_resolver_args(HOST, NODE_IP)],
    )
    page = chromium.new_page()
    try:
        yield page
    finally:
        chromium.close()


def test_node_is_a_real_kubelet_on_containerd(real_node: RealNode) -> None:
    node = json.loads(real_node.kubectl("get", "node", "-o", "json").stdout)["items"][0]
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.36.3"
    assert info["containerRuntimeVersion"].startswith("containerd://2.")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == NODE_IP
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})


def test_kubelet_refuses_anonymous_callers_and_has_no_read_only_port(
    real_node: RealNode,
) -> None:
    ctx = ssl.create_default_context(cafile=str(real_node.dirs.pki / "ca.pem"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"https://{NODE_IP}:10250/pods", context=ctx, timeout=5)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{NODE_IP}:10255/pods", timeout=5)


def test_operator_runs_as_a_pod_with_its_service_account(journey: Journey) -> None:
    pods = journey.json("get", "pods", "-n", OPERATOR_NAMESPACE)["items"]
    (pod,) = [p for p in pods if p["metadata"].get("deletionTimestamp") is None]
    assert pod["spec"]["serviceAccountName"].startswith("orderpipeline-operator")
    assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    env = {e["name"] for c in pod["spec"]["containers"] for e in c.get("env", [])}
    assert "KUBECONFIG" not in env  # in-cluster: its ServiceAccount's token only


def test_every_pod_is_a_running_container_and_ready(journey: Journey) -> None:
    pods = journey.json("get", "pods", "--all-namespaces")["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    names = {p["metadata"]["name"] for p in running}
    for component in ("producer", "fraud", "payment", "analytics"):
        assert any(n.startswith(f"{PIPELINE}-{component}-") for n in names), (component, names)
    assert any("backend" in n for n in names) and any("dashboard" in n for n in names), names
    for pod in running:
        for status in pod["status"]["containerStatuses"]:
            assert status["ready"], (pod["metadata"]["name"], status)
            assert status["containerID"].startswith("containerd://"), status
            assert status["imageID"], status
    for namespace in ("default", OPERATOR_NAMESPACE, "kube-system", "traefik"):
        labels = journey.json("get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", namespace


def test_pods_resolve_through_cluster_dns_only(journey: Journey) -> None:
    resolv = journey.kubectl("exec", f"deploy/{PIPELINE}-fraud", "--", "cat", "/etc/resolv.conf")
    servers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert servers == [DNS_SERVICE_IP], resolv
    resolved = journey.in_pod(
        f"{PIPELINE}-fraud", "import socket; print(socket.gethostbyname('kafka'))"
    )
    assert resolved.strip().startswith("198.19."), resolved


def test_kubectl_get_opl_shows_each_groups_lag_read_by_the_operator_pod(journey: Journey) -> None:
    """The operator runs in its own namespace and reads the pipeline's Kafka as the pipeline's
    pods name it (`kafka:9092` in `default`): LAG is a number, never `unknown`, per group."""

    def lag_read() -> bool:
        status = journey.json("get", "orderpipeline", PIPELINE).get("status") or {}
        groups = status.get("consumers") or {}
        lags = [groups.get(name, {}).get("lag") for name in ("fraud", "payment", "analytics")]
        return (
            all(isinstance(lag, int) for lag in lags)
            and str((status.get("summary") or {}).get("lag", "")).isdigit()
        )

    wait_for(lag_read, timeout=120, interval=2, what="every group's lag read from Kafka")
    table = journey.kubectl("get", "opl", PIPELINE)
    header, row = table.splitlines()[:2]
    lag = row.split()[header.split().index("LAG")]
    assert lag.isdigit(), table


def test_dashboard_at_orders_local_shows_live_orders_equal_to_the_backend(
    journey: Journey, node_page: Page
) -> None:
    assert journey.analytics()["totals"]["orders"] > 0, "no order reached the backend"
    # Quiet the producer so that the page and the API can be compared exactly.
    journey.set_producer_replicas(0)
    journey.wait_totals_match_topic()
    node_page.goto(f"http://{HOST}/")
    expect(node_page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "live", timeout=30_000
    )
    totals = journey.analytics()["totals"]
    wanted = {field: float(totals[field]) for field in KPI_FIELDS.values()}
    wait_for(
        lambda: kpi_values(node_page) == wanted, timeout=15, what=f"KPI cards equal to {wanted}"
    )
    node_page.evaluate("window.__sameDocument = true")

    order_id = new_order_id()
    order = {
        "order_id": order_id, "customer_id": 4242, "amount": 512.25, "currency": "USD",
        "country": "DE", "status": "CREATED", "source": "node-journey",
    }  # fmt: skip
    assert list(journey.produce_orders(order)) == [order_id]
    expect(node_page.get_by_test_id("order-row").first).to_have_attribute(
        "data-order-id", order_id, timeout=30_000
    )
    expect(node_page.get_by_test_id("kpi-total-orders")).to_have_attribute(
        "data-value", str(totals["orders"] + 1)
    )
    assert node_page.evaluate("window.__sameDocument") is True
    ARTIFACTS.mkdir(exist_ok=True)
    node_page.screenshot(path=ARTIFACTS / "node-dashboard.png")
    journey.set_producer_replicas(1)


def test_kubectl_logs_and_exec_reach_the_containers(journey: Journey) -> None:
    logs = journey.kubectl("logs", f"deploy/{PIPELINE}-analytics", "--tail=50")
    assert logs.strip(), "no log lines from the analytics container"
    who = journey.kubectl("exec", f"deploy/{PIPELINE}-analytics", "--", "id", "-u")
    assert who.strip() != "0"  # the image's non-root user


def test_helm_test_of_the_webapp_release_succeeds(journey: Journey) -> None:
    releases = json.loads(journey.node.helm("list", "-o", "json").stdout)
    (release,) = [r["name"] for r in releases if r["chart"].startswith("webapp")]
    out = journey.node.helm("test", release, "--timeout", "3m").stdout
    assert "Phase:          Succeeded" in out or "Succeeded" in out, out


def test_analytics_pod_force_deleted_mid_stream_keeps_totals_exact(journey: Journey) -> None:
    (before,) = journey.pods(f"{PIPELINE}-analytics")
    time.sleep(3)  # orders flowing at the producer's rate
    journey.kubectl(
        "delete", "pod", before["metadata"]["name"], "--force", "--grace-period=0", "--wait=false"
    )
    wait_for(
        lambda: any(
            p["metadata"]["name"] != before["metadata"]["name"]
            and all(c["ready"] for c in p["status"].get("containerStatuses", []))
            for p in journey.pods(f"{PIPELINE}-analytics")
        ),
        timeout=180,
        what="a replacement analytics pod Ready",
    )
    time.sleep(3)
    journey.set_producer_replicas(0)
    seen = journey.wait_totals_match_topic()
    assert seen["totals"]["orders"] == seen["truth"]["orders"]
    journey.set_producer_replicas(1)


def _pod_uids(journey: Journey) -> dict[str, set[str]]:
    """The uids of the pods not being deleted, by component (a producer pod still draining
    after the previous test scaled it down is not one of the pipeline's pods any more)."""
    uids: dict[str, set[str]] = {}
    for pod in journey.json("get", "pods")["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        owner = pod["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
        uids.setdefault(owner, set()).add(pod["metadata"]["uid"])
    return uids


class _IngressWatch:
    """GET /api/analytics through the ingress every 50 ms in a thread; keeps what failed.

    What a dashboard polling during a rolling update meets: an error answer (a 502 from a
    pod that stopped accepting) or a request hanging on a pod address that is gone.
    """

    def __init__(self, journey: Journey) -> None:
        self._journey = journey
        self._stop = threading.Event()
        self.requests = 0
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, name="ingress-watch", daemon=True)

    def __enter__(self) -> _IngressWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._journey.analytics()
            except Exception as exc:  # every kind of failure is what the test reports
                took = time.monotonic() - started
                self.failures.append(f"{time.strftime('%H:%M:%S')} {exc!r} after {took:.1f} s")
            self.requests += 1
            self._stop.wait(0.05)


def test_rotated_couchbase_secret_rolls_exactly_the_pods_using_it_without_dropping_a_request(
    journey: Journey, node_page: Page
) -> None:
    """A new Couchbase user and password: the pods reading them roll, the others stay, and
    the dashboard's API answers every request through the ingress while the backend rolls."""
    password = secrets.token_urlsafe(16)
    couchbase_pod = journey.json("get", "pods", "-l", "app.kubernetes.io/name=couchbase")
    pod_ip = couchbase_pod["items"][0]["status"]["podIP"]
    body = f"password={password}&roles=admin".encode()
    request = urllib.request.Request(
        f"http://{pod_ip}:8091/settings/rbac/users/local/orders-app", data=body, method="PUT"
    )
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Authorization", "Basic QWRtaW5pc3RyYXRvcjpwYXNzd29yZA==")
    urllib.request.urlopen(request, timeout=10).close()

    before = _pod_uids(journey)
    secret = {"stringData": {"username": "orders-app", "password": password}}

    def rolled(component: str) -> Callable[[], bool]:
        def check() -> bool:
            now = _pod_uids(journey)
            return bool(now.get(component)) and not (now[component] & before[component])

        return check

    with _IngressWatch(journey) as watch:
        journey.kubectl("patch", "secret", "couchbase-credentials", "-p", json.dumps(secret))
        wait_for(rolled("analytics"), timeout=240, interval=2, what="analytics pods replaced")
        wait_for(rolled("backend"), timeout=240, interval=2, what="backend pods replaced")
        backend = "app.kubernetes.io/component=backend"
        journey.kubectl("rollout", "status", "deployment", "-l", backend, "--timeout=240s")
        journey.kubectl(
            "wait", "--for=condition=Ready", f"orderpipeline/{PIPELINE}", "--timeout=300s"
        )
        # Until the old backend pod has drained and exited: the moment requests used to hang.
        wait_for(
            lambda: len(journey.json("get", "pods", "-l", backend)["items"]) == 1,
            timeout=120,
            interval=1,
            what="only the new backend pod left",
        )
    assert watch.requests > 100, f"only {watch.requests} requests watched the roll"
    assert not watch.failures, f"{len(watch.failures)} of {watch.requests} failed: " + "; ".join(
        watch.failures[:10]
    )
    after = _pod_uids(journey)
    for component in ("producer", "fraud", "payment"):
        assert after.get(component) == before.get(component), component
    node_page.goto(f"http://{HOST}/")
    expect(node_page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "live", timeout=60_000
    )
    first = journey.analytics()["totals"]["orders"]
    wait_for(
        lambda: journey.analytics()["totals"]["orders"] > first,
        timeout=120,
        what="new orders counted with the rotated credentials",
    )


def test_deleting_the_pipeline_removes_its_pods_and_release(journey: Journey) -> None:
    journey.kubectl("delete", "orderpipeline", PIPELINE, "--timeout=180s", timeout=200)

    def gone() -> bool:
        pods = journey.json("get", "pods")["items"]
        ours = [p for p in pods if p["metadata"]["name"].startswith(f"{PIPELINE}-")]
        releases = json.loads(journey.node.helm("list", "-o", "json").stdout)
        return not ours and not releases

    wait_for(gone, timeout=180, interval=2, what="pipeline pods and release removed")
