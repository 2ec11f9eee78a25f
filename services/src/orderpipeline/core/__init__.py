"""The shared core of every OrderPipeline service: settings, the order schema, Kafka clients,
dead letters, logging, metrics, health endpoints and the process lifecycle."""
