"""services.netguard: where a webhook may connect, checked on the addresses actually resolved and connected to."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.netguard import (
    AddressPolicy,
    AddressRefusedError,
    check_url,
    connection_for,
    open_connection,
    restriction,
)
from services.tls import write_dev_certs

PUBLIC = "93.184.215.14"  # a public address: never dialled by these tests (connections are refused or detoured)


@pytest.mark.parametrize(
    "address,kind",
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "non-global"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 form of 169.254.169.254
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 form of 169.254.169.254
        ("224.0.0.1", "multicast"),
        ("8.8.8.8", None),
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_every_kind_of_non_public_address_is_named(address, kind):
    assert restriction(address) == kind


@pytest.mark.parametrize(
    "url,allow,problem",
    [
        ("https://hooks.fiji.example/hits", False, None),
        ("https://hooks.fiji.example:8443/hits?x=1", False, None),
        ("http://hooks.fiji.example/hits", True, "plain http"),
        ("http://10.0.0.5/hits", True, "plain http"),
        ("https://169.254.169.254/latest/meta-data/", False, "link-local"),
        ("https://169.254.169.254/latest/meta-data/", True, None),
        ("https://[::ffff:a9fe:a9fe]/", False, "169.254.169.254"),
        ("https://10.0.0.5/hits", False, "private"),
        ("https://100.64.0.9/hits", False, "non-global"),
        ("https://[fe80::1]/hits", False, "link-local"),
        ("https://0.0.0.0/hits", False, "unspecified"),
        ("http://127.0.0.1:8080/hits", False, "loopback"),
        ("http://127.0.0.1:8080/hits", True, None),
        ("http://localhost:8080/hits", False, "loopback"),
        ("http://localhost:8080/hits", True, None),
        ("http://[::1]:8080/hits", True, None),
        ("https://user:pw@hooks.fiji.example/", False, "user name"),
        ("https://hooks.fiji.example:99999/", False, "not a usable URL"),
        ("ftp://hooks.fiji.example/", False, "https://"),
        ("https:///hits", False, "https://"),
    ],
)
def test_a_webhook_url_is_https_and_public_unless_allowed(url, allow, problem):
    found = check_url(url, allow)
    assert (found is None) if problem is None else (problem in found)


# -- connections ---------------------------------------------------------------------------------------------
class Site:
    """An HTTP (or, given a certificate, HTTPS) server on loopback answering every request with ``status``."""

    def __init__(self, status: int = 200, location: str = "", cert_dir=None):
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                site.requests.append((self.command, self.path))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert_dir is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert_dir / "server.pem", cert_dir / "server-key.pem")
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    made: list[Site] = []

    def make(*args, **kwargs) -> Site:
        made.append(Site(*args, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


class Names(dict):
    """Made-up host names and the addresses they resolve to; ``calls`` lists the lookups made."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []


@pytest.fixture
def names(monkeypatch) -> Names:
    """A resolver that answers for the made-up names it is given (others resolve as usual)."""
    table = Names()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            return real(host, port, *args, **kwargs)
        table.calls.append(host)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def connects(monkeypatch):
    """Records every socket connect() and refuses it, so that no test ever dials a public address."""
    dialled: list = []

    def connect(sock, address):
        dialled.append(address)
        raise ConnectionRefusedError("test: not dialled")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return dialled


def test_every_resolved_address_is_checked_before_any_is_dialled(names, connects):
    names["hooks.fiji.test"] = [PUBLIC, "10.0.0.7"]  # a public first answer does not hide a private second
    with pytest.raises(AddressRefusedError, match=r"10\.0\.0\.7, a private address"):
        open_connection("hooks.fiji.test", 443, 5, AddressPolicy())
    names["meta.fiji.test"] = ["::ffff:169.254.169.254"]
    with pytest.raises(AddressRefusedError, match=r"169\.254\.169\.254\), a link-local address"):
        open_connection("meta.fiji.test", 443, 5, AddressPolicy())
    assert connects == []


def test_a_public_name_that_resolves_to_the_metadata_address_is_refused_when_the_post_is_made(names, connects):
    # The URL passes on its face (a public-looking name); only the address it resolves to at connection time
    # tells: the check made when the directory was loaded is not the last word.
    url = "https://hooks.fiji.test/hits"
    assert check_url(url) is None
    names["hooks.fiji.test"] = ["169.254.169.254"]
    connection, target = connection_for(url, False, 5)
    with pytest.raises(AddressRefusedError, match="link-local"):
        connection.request("POST", target, body=b"{}")
    assert connects == []


def test_the_address_actually_connected_to_is_checked(names, monkeypatch):
    # A public answer, but the connection ends on loopback (a detour on the way: NAT, a transparent proxy).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda sock, _addr: real_connect(sock, listener.getsockname()))
    names["hooks.fiji.test"] = [PUBLIC]
    try:
        with pytest.raises(AddressRefusedError, match=r"is connected to 127\.0\.0\.1, a loopback address"):
            open_connection("hooks.fiji.test", 443, 5, AddressPolicy())
    finally:
        listener.close()


def test_plain_http_must_end_on_loopback_even_when_private_networks_are_allowed(names, connects):
    names["localhost"] = ["10.0.0.9"]  # a resolver that lies about localhost
    connection, target = connection_for("http://localhost:8080/hits", True, 5)
    with pytest.raises(AddressRefusedError, match="plain http is allowed to loopback only"):
        connection.request("POST", target, body=b"{}")
    assert connects == []


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throwaway CA and a server certificate for localhost, 127.0.0.1 and ::1 (services.tls)."""
    out = tmp_path_factory.mktemp("certs")
    write_dev_certs(out)
    return out


def test_https_dials_the_checked_address_and_verifies_the_certificate_against_the_url_host(names, site, certs):
    hub = site(200, cert_dir=certs)
    trust = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    connection, target = connection_for(f"https://localhost:{hub.port}/hits", True, 5, trust)
    connection.request("POST", target, body=b"{}")
    assert connection.getresponse().status == 200
    connection.close()
    # A name resolved once, to the checked address, which is the one dialled: the TLS handshake reaches the
    # server there, and fails because its certificate does not carry the URL's host name.
    names["hooks.fiji.test"] = ["127.0.0.1"]
    connection, target = connection_for(f"https://hooks.fiji.test:{hub.port}/hits", True, 5, trust)
    with pytest.raises(ssl.SSLCertVerificationError, match="hooks.fiji.test"):
        connection.request("POST", target, body=b"{}")
    assert names.calls == ["hooks.fiji.test"]
    assert hub.requests == [("POST", "/hits")]


def test_a_guarded_connection_never_follows_a_redirect(site):
    elsewhere = site(200)
    redirector = site(302, location=f"http://127.0.0.1:{elsewhere.port}/latest/meta-data/")
    connection, target = connection_for(f"http://127.0.0.1:{redirector.port}/hits?member=FJI", True, 5)
    connection.request("POST", target, body=b"{}")
    assert connection.getresponse().status == 302
    connection.close()
    assert redirector.requests == [("POST", "/hits?member=FJI")]
    assert elsewhere.requests == []


def test_an_ipv6_literal_without_a_port_keeps_its_address_and_the_default_port():
    connection, target = connection_for("https://[2606:4700:4700::1111]/hits", False, 5)
    assert (connection.host, connection.port, target) == ("2606:4700:4700::1111", 443, "/hits")
    connection, _ = connection_for("http://[::1]/", True, 5)
    assert (connection.host, connection.port) == ("::1", 80)
