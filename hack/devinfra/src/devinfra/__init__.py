"""Real local infrastructure for tests and `make up`: Kafka, gocaves, a Kubernetes control plane."""
