"""Pure functions from an OrderPipeline spec to Kubernetes objects (plain dicts).

No I/O here: the handlers read the cluster, call these, and write the result.
"""
