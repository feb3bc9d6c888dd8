from __future__ import annotations

import pytest

from services.directory import load_directory, parse_directory
from services.errors import ConfigError
from services.geo import port_country


@pytest.mark.parametrize(
    "port,country",
    [
        ("NAN", "FJI"),
        ("APW", "WSM"),
        ("NOU", "NCL"),
        ("RAR", "COK"),
        ("IUE", "NIU"),
        ("PPT", "PYF"),
        ("FJSUV", "FJI"),
        ("QQQ", None),
    ],
)
def test_ports_resolve_through_the_airport_table(port, country):
    assert port_country(port) == country


def test_every_member_of_the_shipped_directory_has_airports():
    directory = load_directory()
    assert {"FJI", "WSM", "TON", "AUS", "NZL", "PNG"} <= set(directory.codes)
    assert directory.jurisdiction(["SYD", "NAN", "TBU"]) == {"AUS", "FJI", "TON"}
    assert directory.jurisdiction(["HNL", "LAX"]) == set()


def test_directory_errors_name_the_member():
    with pytest.raises(ConfigError, match=r"members\[1\].*XXQ"):
        parse_directory("members:\n  - {code: FJI}\n  - {code: XXQ}\n", "test.yaml")
    with pytest.raises(ConfigError, match="unknown country"):
        parse_directory("members:\n  - {code: FJI, countries: [FJI, ZZZ]}\n", "test.yaml")


def test_webhook_channel_needs_a_url_and_a_secret_variable():
    directory = parse_directory(
        "members:\n  - {code: FJI, webhook: {url: 'https://fiji.example/hits', secret_env: FJI_HOOK_SECRET}}\n", "t"
    )
    assert directory.members["FJI"].webhook.secret_env == "FJI_HOOK_SECRET"
    with pytest.raises(ConfigError, match="webhook"):
        parse_directory("members:\n  - {code: FJI, webhook: {url: 'ftp://x', secret_env: S}}\n", "t")
    with pytest.raises(ConfigError, match="webhook"):
        parse_directory("members:\n  - {code: FJI, webhook: {url: 'https://x'}}\n", "t")


def _hook(url: str, extra: str = "") -> str:
    return f"members:\n  - {{code: FJI, webhook: {{url: '{url}', secret_env: FJI_HOOK_SECRET{extra}}}}}\n"


@pytest.mark.parametrize(
    "url,refusal",
    [
        ("http://hooks.fiji.example/hits", "plain http"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://10.20.30.40/hits", "private"),
        ("https://192.168.0.10/hits", "private"),
        ("https://100.64.0.1/hits", "non-global"),
        ("https://[fd00::1]/hits", "private"),
        ("https://0.0.0.0/hits", "unspecified"),
        ("http://127.0.0.1:8080/hits", "loopback"),
        ("http://localhost:8080/hits", "loopback"),
        ("https://ops:secret@hooks.fiji.example/hits", "user name"),
    ],
)
def test_a_webhook_url_that_is_not_https_to_a_public_host_is_refused_without_an_explicit_allow(url, refusal):
    with pytest.raises(ConfigError, match=rf"members\[0\] \(FJI\): webhook url .*{refusal}"):
        parse_directory(_hook(url), "t")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hits", "http://[::1]:8080/hits", "https://10.20.30.40/hits", "https://[fe80::1]/"]
)
def test_private_and_loopback_webhooks_load_with_allow_private_network(url):
    hook = parse_directory(_hook(url, ", allow_private_network: true"), "t").members["FJI"].webhook
    assert hook.url == url and hook.allow_private_network


def test_plain_http_stays_refused_off_loopback_even_with_the_allow():
    with pytest.raises(ConfigError, match="plain http"):
        parse_directory(_hook("http://10.20.30.40/hits", ", allow_private_network: true"), "t")


def test_the_allow_is_a_boolean_and_the_webhook_a_mapping():
    with pytest.raises(ConfigError, match="allow_private_network must be true or false"):
        parse_directory(_hook("https://10.20.30.40/hits", ", allow_private_network: 'yes please'"), "t")
    with pytest.raises(ConfigError, match="webhook must be a mapping"):
        parse_directory("members:\n  - {code: FJI, webhook: 'https://hooks.fiji.example/'}\n", "t")
    public = parse_directory(_hook("https://hooks.fiji.example/hits"), "t").members["FJI"].webhook
    assert public.allow_private_network is False


def test_the_allow_may_stand_in_the_member_entry_itself():
    text = (
        "members:\n  - {code: FJI, allow_private_network: true,"
        " webhook: {url: 'http://127.0.0.1:8080/hits', secret_env: S}}\n"
    )
    assert parse_directory(text, "t").members["FJI"].webhook.allow_private_network
    with pytest.raises(ConfigError, match="loopback"):  # the webhook's own setting wins
        parse_directory(text.replace("secret_env: S", "secret_env: S, allow_private_network: false"), "t")
