"""The three images, built by hack/images.sh, started for real under runc the way the
charts run them: as the image's non-root user, read-only root filesystem, a tmpfs on
/tmp, no capabilities, no new privileges.

The first run builds the bases and images (several minutes, cached afterwards under
~/.cache/orderpipeline/images-*); a warm run only checks that nothing changed.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from devinfra.procs import free_port

pytestmark = pytest.mark.images

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ["producer", "fraud", "payment", "analytics", "backend"]


@pytest.fixture(scope="session")
def images_dir() -> Path:
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "images.sh")], capture_output=True, text=True, timeout=3000
    )
    assert result.returncode == 0, f"hack/images.sh failed:\n{result.stderr[-3000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


class Image:
    """A built image, mounted read-only as a runc bundle's root filesystem."""

    def __init__(self, images_dir: Path, name: str, tmp: Path) -> None:
        self.ref = f"localhost/orderpipeline/{name}:dev"
        self._storage = [
            "--root", str(images_dir / "storage"), "--runroot", str(images_dir / "run"),
            "--storage-driver", "vfs",
        ]  # fmt: skip
        info = json.loads(self._buildah("inspect", "--type", "image", self.ref))
        self.config: dict[str, Any] = info["OCIv1"]["config"]
        self.labels: dict[str, str] = self.config.get("Labels") or {}
        self._container = self._buildah("from", "--pull-never", self.ref).strip()
        self.rootfs = Path(self._buildah("mount", self._container).strip())
        self._tmp = tmp

    def _buildah(self, *args: str) -> str:
        return subprocess.run(
            ["buildah", *self._storage, *args], capture_output=True, text=True, check=True
        ).stdout

    def close(self) -> None:
        self._buildah("rm", self._container)

    def bundle(self, args: list[str] | None, env: dict[str, str]) -> Path:
        """A runc bundle running `args` (default: the image's entrypoint + cmd)."""
        bundle = self._tmp / uuid.uuid4().hex[:8]
        bundle.mkdir()
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        spec = json.loads((bundle / "config.json").read_text())
        user = self.config["User"]
        uid, _, gid = user.partition(":")
        process = spec["process"]
        process["terminal"] = False
        process["user"] = {"uid": int(uid), "gid": int(gid or uid)}
        process["args"] = args or [
            *(self.config.get("Entrypoint") or []),
            *(self.config.get("Cmd") or []),
        ]
        process["env"] = [*self.config.get("Env", []), *(f"{k}={v}" for k, v in env.items())]
        process["cwd"] = self.config.get("WorkingDir") or "/"
        process["noNewPrivileges"] = True
        process["capabilities"] = {k: [] for k in process["capabilities"]}
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777", "size=64m"]}
        )  # fmt: skip
        # The host's network: the test reaches the container's ports on loopback.
        spec["linux"]["namespaces"] = [
            n for n in spec["linux"]["namespaces"] if n["type"] != "network"
        ]
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle


@pytest.fixture(scope="session")
def image(images_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    opened: dict[str, Image] = {}

    def _image(name: str) -> Image:
        if name not in opened:
            opened[name] = Image(images_dir, name, tmp_path_factory.mktemp(name))
        return opened[name]

    yield _image
    for img in opened.values():
        img.close()


def run_once(
    img: Image, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    bundle = img.bundle(args, env or {})
    return subprocess.run(
        ["runc", "run", "--bundle", str(bundle), f"t-{bundle.name}"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


class Running:
    def __init__(self, img: Image, env: dict[str, str], args: list[str] | None = None) -> None:
        bundle = img.bundle(args, env)
        self.id = f"t-{bundle.name}"
        self.log = bundle / "output.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                ["runc", "run", "--bundle", str(bundle), self.id],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(["runc", "kill", self.id, "KILL"], capture_output=True)
        self.proc.wait(timeout=30)
        subprocess.run(["runc", "delete", "--force", self.id], capture_output=True)


def http_get(url: str, timeout: float = 60) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("name", ["services", "operator", "dashboard"])
def test_image_runs_as_non_root_with_oci_labels(image: Any, name: str) -> None:
    img = image(name)
    uid = img.config["User"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, img.config["User"]
    assert img.labels["org.opencontainers.image.title"] == f"orderpipeline-{name}"
    assert img.labels["org.opencontainers.image.version"]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_services_image_answers_help_for_every_entry_point(image: Any, entry_point: str) -> None:
    result = run_once(image("services"), ["orderpipeline", entry_point, "--help"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "usage" in (result.stdout + result.stderr).lower()


def test_services_image_backend_serves_healthz(image: Any) -> None:
    port = free_port()
    env = {
        "BACKEND_PORT": str(port),
        "COUCHBASE_CONNECTION_STRING": "couchbase://127.0.0.1:1",
        "COUCHBASE_PASSWORD": "unused",
    }
    backend = Running(image("services"), env, ["orderpipeline", "backend"])
    try:
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"}), backend.log.read_text()
    finally:
        backend.stop()


def test_operator_image_runs_the_pinned_helm(image: Any) -> None:
    result = run_once(image("operator"), ["helm", "version", "--short"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v4."), result.stdout
    chart = image("operator").rootfs / "opt" / "charts" / "webapp" / "Chart.yaml"
    assert chart.read_text() == (ROOT / "charts" / "webapp" / "Chart.yaml").read_text()


def test_operator_image_imports_the_operator(image: Any) -> None:
    script = "import orderpipeline_operator.cli, kopf; print('ok')"
    result = run_once(image("operator"), ["python", "-c", script])
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


class _Backend(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Backend.paths.append(self.path)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_dashboard_image_serves_the_dashboard_and_proxies_api_keeping_the_prefix(
    image: Any,
) -> None:
    fake_backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    threading.Thread(target=fake_backend.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        "BACKEND_URL": f"http://127.0.0.1:{fake_backend.server_address[1]}",
        "NGINX_PORT": str(port),
    }
    nginx = Running(image("dashboard"), env)
    try:
        status, page = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and '<div id="root">' in page, nginx.log.read_text()
        status, spa = http_get(f"http://127.0.0.1:{port}/some/client/route")
        assert status == 200 and '<div id="root">' in spa
        status, body = http_get(f"http://127.0.0.1:{port}/api/analytics?x=1")
        assert status == 200 and json.loads(body) == {"path": "/api/analytics?x=1"}
        assert _Backend.paths == ["/api/analytics?x=1"]
    finally:
        nginx.stop()
        fake_backend.shutdown()


def test_dashboard_image_refuses_a_backend_url_with_a_path(image: Any) -> None:
    env = {"BACKEND_URL": "http://backend:8000/api"}  # nginx would replace /api with /api
    result = run_once(image("dashboard"), ["/usr/local/bin/nginx-entrypoint"], env)
    assert result.returncode == 64 and "no path" in result.stderr
