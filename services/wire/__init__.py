"""Generated protobuf and gRPC code (``apihub dev protos``): never edit by hand.

Re-exports the message and service modules under short names.
"""

from services.wire.apihub.v1 import (
    check_pb2,
    check_pb2_grpc,
    delivery_pb2,
    delivery_pb2_grpc,
    hit_pb2,
    intake_pb2,
    intake_pb2_grpc,
)
from services.wire.apihub.v1 import manifest_pb2

__all__ = [
    "check_pb2",
    "check_pb2_grpc",
    "delivery_pb2",
    "delivery_pb2_grpc",
    "hit_pb2",
    "intake_pb2",
    "intake_pb2_grpc",
    "manifest_pb2",
]
