"""kopf operator for OrderPipeline resources."""
