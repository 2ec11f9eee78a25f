"""OrderPipeline services."""
