"""BASELINE: small reproductions of the original system's design, measured next to ours.

Same client library as ours (confluent-kafka) so the difference measured is the design:
- producer.py: a blocking wait for every send (the original's `future.get()`);
- fraud.py: a per-message loop with auto-commit (the original's `for msg in consumer`);
- payment.py: a sequential 100 ms sleep per order.
"""
