"""Kubernetes API calls of the operator (the official client; never kubectl).

Raw JSON in and out (`_preload_content=False`): the manifests are plain dicts and the
client's model classes would only cost memory and CPU.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "orderpipeline.io", "v1alpha1", "orderpipelines"
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
# Only the metadata of Helm's release Secrets: their labels say revision and state, and
# the operator has no business reading the release payload.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


class Kube:
    def __init__(self, field_manager: str) -> None:
        api = client.ApiClient()
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._manager = field_manager

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: an unchanged object is not written (no resourceVersion bump)."""
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        kwargs: dict[str, Any] = {
            "field_manager": self._manager,
            "force": True,
            "_content_type": _APPLY,
            "_preload_content": False,
        }
        resp: Any
        if obj["kind"] == "Deployment":
            resp = self._apps.patch_namespaced_deployment(name, namespace, obj, **kwargs)
        elif obj["kind"] == "ConfigMap":
            resp = self._core.patch_namespaced_config_map(name, namespace, obj, **kwargs)
        else:
            raise ValueError(f"cannot apply {obj['kind']}")
        return _json(resp)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(
                self._apps.read_namespaced_deployment(name, namespace, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_deployment(self, namespace: str, name: str) -> bool:
        """True when something was deleted."""
        try:
            self._apps.delete_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def secret_values(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded data of a Secret, or None when it does not exist."""
        try:
            raw = _json(self._core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in (raw.get("data") or {}).items()}

    def helm_release(self, namespace: str, release: str) -> tuple[int, str] | None:
        """(revision, state) of the newest revision of a Helm release, None if absent."""
        resp = self._core.list_namespaced_secret(
            namespace,
            label_selector=f"owner=helm,name={release}",
            _preload_content=False,
            _headers={"Accept": _METADATA_ONLY},
        )
        revisions = [
            (int(item["metadata"]["labels"]["version"]), item["metadata"]["labels"]["status"])
            for item in _json(resp).get("items") or []
            if "version" in (item["metadata"].get("labels") or {})
        ]
        return max(revisions) if revisions else None

    def get_pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(
                self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status},
                _content_type=_MERGE,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise
