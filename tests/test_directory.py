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
