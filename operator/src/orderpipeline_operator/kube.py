"""Kubernetes API calls of the operator (the official client's ApiClient; never kubectl).

Raw JSON in and out over `ApiClient.call_api` with plain REST paths: the manifests are
plain dicts, and the generated `CoreV1Api`/`AppsV1Api` modules (6 MB of Python source)
alone cost ~95 MB of RSS and seconds of start-up to import, for the few calls below.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from orderpipeline_operator.helm import Release
from orderpipeline_operator.manifests.labels import GROUP

__all__ = ["GROUP", "PLURAL", "VERSION", "Kube", "load_config"]

VERSION, PLURAL = "v1alpha1", "orderpipelines"
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
# Only the metadata of Helm's release Secrets: their labels say revision and state, and
# the operator has no business reading the release payload.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps/{name}",
}


def load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _path(template: str, **parts: str) -> str:
    return template.format(**{k: quote(v, safe="") for k, v in parts.items()})


class Kube:
    def __init__(self, field_manager: str, pool_size: int = 10) -> None:
        conf = client.Configuration.get_default_copy()
        # One connection per handler thread: a full pool discards connections (new TLS).
        conf.connection_pool_maxsize = max(pool_size, conf.connection_pool_maxsize or 0)
        self._api = client.ApiClient(conf)
        self._manager = field_manager

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        if query:
            path = f"{path}?{urlencode(query)}"
        _, url, headers, body, _ = self._api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        resp = self._api.call_api(method, url, header_params=headers, body=body)
        data: bytes = resp.read()  # type: ignore[no-untyped-call]
        if not 200 <= resp.status <= 299:
            raise ApiException.from_response(
                http_resp=resp, body=data.decode(errors="replace"), data=None
            )
        out: dict[str, Any] = json.loads(data) if data else {}
        return out

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: an unchanged object is not written (no resourceVersion bump)."""
        template = _PATHS.get(obj["kind"])
        if template is None:
            raise ValueError(f"cannot apply {obj['kind']}")
        meta = obj["metadata"]
        return self._call(
            "PATCH",
            _path(template, ns=meta["namespace"], name=meta["name"]),
            query={"fieldManager": self._manager, "force": "true"},
            body=obj,
            content_type=_APPLY,
        )

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_or_none(_path(_PATHS["Deployment"], ns=namespace, name=name))

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        path = _path("/apis/apps/v1/namespaces/{ns}/deployments", ns=namespace)
        items: list[dict[str, Any]] = (
            self._call("GET", path, query={"labelSelector": selector}).get("items") or []
        )
        return items

    def delete_deployment(self, namespace: str, name: str) -> bool:
        """True when something was deleted."""
        try:
            self._call("DELETE", _path(_PATHS["Deployment"], ns=namespace, name=name))
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def secret_values(self, namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
        """(uid, decoded data) of a Secret, or None when it does not exist."""
        raw = self._get_or_none(
            _path("/api/v1/namespaces/{ns}/secrets/{name}", ns=namespace, name=name)
        )
        if raw is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (raw.get("data") or {}).items()}
        return str(raw["metadata"]["uid"]), data

    def helm_release(self, namespace: str, release: str) -> Release | None:
        """A release's newest revision (from the labels of helm's release Secrets), or None."""
        resp = self._call(
            "GET",
            _path("/api/v1/namespaces/{ns}/secrets", ns=namespace),
            query={"labelSelector": f"owner=helm,name={release}"},
            accept=_METADATA_ONLY,
        )
        revisions = [
            Release(int(labels["version"]), labels["status"], int(labels.get("modifiedAt") or 0))
            for item in resp.get("items") or []
            if "version" in (labels := item["metadata"].get("labels") or {})
        ]
        return max(revisions, key=lambda r: r.revision) if revisions else None

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        path = _path(
            f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}/{{name}}/status",
            ns=namespace, name=name,
        )  # fmt: skip
        try:
            self._call("PATCH", path, body={"status": status}, content_type=_MERGE)
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise
