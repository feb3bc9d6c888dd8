"""A service told to listen on a port another program holds ends with a message saying so, not a traceback."""

from __future__ import annotations

import socket

import pytest

from services.config import HubSettings
from services.errors import HubError
from services.serving import bind, new_grpc_server


def test_a_port_in_use_is_a_hub_error_naming_the_address_and_the_settings():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        server = new_grpc_server(HubSettings())
        try:
            with pytest.raises(HubError) as refused:
                bind(server, f"127.0.0.1:{port}")
        finally:
            server.stop(0)
    assert f"127.0.0.1:{port}" in str(refused.value) and "APIHUB_DELIVERY_LISTEN" in str(refused.value)
