"""Entry module for `kopf run -m orderpipeline_operator.main`: registers every handler."""

from orderpipeline_operator import handlers

__all__ = ["handlers"]
