"""Screening quality: the generated quality set, public real-world name data, and the report that measures the
matcher on both (tuning and held-out parts, a naive baseline beside it). Dev code: not part of the runtime."""
