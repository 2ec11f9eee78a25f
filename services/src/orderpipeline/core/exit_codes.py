"""The services' exit codes, what a supervisor (Kubernetes, `make up`) reads from a stop.

0 done (stopped by a signal or finished its count), 1 runtime failure (an output could not
be delivered), 2 invalid configuration, 3 unrecoverable Kafka error (credentials, TLS,
authorization). Its own module so that the backend, which has no Kafka client, can use them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_KAFKA_FATAL = 3
