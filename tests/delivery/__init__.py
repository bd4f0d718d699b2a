"""Delivery: runs end to end, the outbox, rate limits, beat jobs, real Celery workers."""
