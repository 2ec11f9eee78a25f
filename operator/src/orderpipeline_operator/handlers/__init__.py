"""kopf handlers; importing this package registers them."""

from orderpipeline_operator.handlers import deployments, pipelines, startup

__all__ = ["deployments", "pipelines", "startup"]
