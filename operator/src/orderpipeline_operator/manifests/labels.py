"""Names and labels of the objects a pipeline owns."""

from __future__ import annotations

GROUP = "orderpipeline.io"
MANAGED_BY = "orderpipeline-operator"
CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"


def configmap_name(pipeline: str) -> str:
    return f"{pipeline}-config"


def deployment_name(pipeline: str, component: str) -> str:
    return f"{pipeline}-{component}"


def release_name(pipeline: str) -> str:
    """The webapp Helm release is named after the pipeline (the CRD caps names at 40)."""
    return pipeline


def selector_labels(pipeline: str, component: str) -> dict[str, str]:
    """Immutable once a Deployment exists: never add to these."""
    return {
        "app.kubernetes.io/name": "orderpipeline",
        "app.kubernetes.io/instance": pipeline,
        "app.kubernetes.io/component": component,
    }


def common_labels(pipeline: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(pipeline, component),
        "app.kubernetes.io/part-of": "orderpipeline",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
