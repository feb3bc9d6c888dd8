"""Stand-ins for Kafka where a unit test runs a gRPC server without a broker (integration tests use the real one)."""

from __future__ import annotations


class AckedFuture:
    """A send the broker has acknowledged at once."""

    def get(self, timeout=None):
        return None

    def add_callback(self, fn):
        fn(None)


class MemoryProducer:
    """Keeps what is sent (topic, key, value) and acknowledges it at once."""

    def __init__(self):
        self.sent = []

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value))
        return AckedFuture()


class EmptyTable:
    """A compacted table (TableReader's interface) that holds nothing."""

    def catch_up(self, timeout_s=30.0, stopping=None):
        return True

    def follow(self, stopping):
        stopping.wait()

    def close(self):
        pass
