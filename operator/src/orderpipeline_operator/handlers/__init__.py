"""kopf handlers; importing this package registers them."""

from orderpipeline_operator.handlers import deployments, lag, pipelines, startup

__all__ = ["deployments", "lag", "pipelines", "startup"]
