"""Settings: members' watchlist screening bands (APIHUB_SCREENING_BANDS), validated at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli import app
from services.config import (
    DEFAULT_SCREENING_ALERT,
    DEFAULT_SCREENING_REVIEW,
    HubSettings,
    lowest_screening_review,
    member_screening_band,
)


@pytest.fixture(autouse=True)
def _no_bands_in_the_environment(monkeypatch):
    monkeypatch.delenv("APIHUB_SCREENING_BANDS", raising=False)


def test_members_without_bands_use_the_defaults():
    settings = HubSettings()
    assert settings.screening_bands == {}
    assert settings.screening_band("FJI") == (DEFAULT_SCREENING_ALERT, DEFAULT_SCREENING_REVIEW)
    assert settings.lowest_screening_review == DEFAULT_SCREENING_REVIEW


def test_bands_from_the_environment_with_member_codes_upper_cased_and_either_band_optional(monkeypatch):
    monkeypatch.setenv("APIHUB_SCREENING_BANDS", '{"fji": {"alert": 0.9, "review": 0.75}, "WSM": {"alert": 1}}')
    settings = HubSettings()
    assert settings.screening_bands == {"FJI": {"alert": 0.9, "review": 0.75}, "WSM": {"alert": 1.0}}
    assert settings.screening_band("FJI") == (0.9, 0.75)
    assert settings.screening_band("fji") == (0.9, 0.75)
    assert settings.screening_band("WSM") == (1.0, DEFAULT_SCREENING_REVIEW)  # review left to the default
    assert settings.screening_band("TON") == (DEFAULT_SCREENING_ALERT, DEFAULT_SCREENING_REVIEW)


def test_the_lowest_review_band_counts_configured_members_and_the_default():
    lower = DEFAULT_SCREENING_REVIEW / 2
    assert HubSettings(screening_bands={"FJI": {"review": lower}}).lowest_screening_review == lower
    # A member stricter than the default does not raise the floor: members without bands still use the default.
    stricter = {"FJI": {"alert": 1.0, "review": 1.0}}
    assert HubSettings(screening_bands=stricter).lowest_screening_review == DEFAULT_SCREENING_REVIEW
    assert lowest_screening_review({}) == DEFAULT_SCREENING_REVIEW
    assert member_screening_band({"FJI": {"review": lower}}, "fji") == (DEFAULT_SCREENING_ALERT, lower)


@pytest.mark.parametrize(
    ("bands", "words"),
    [
        ({"FJI": {"alert": 0.8, "review": 0.9}}, ["FJI", "review", "alert"]),
        ({"FJI": {"alert": DEFAULT_SCREENING_REVIEW / 2}}, ["FJI", "review", "(the default)"]),
        ({"FJI": {"review": 0}}, ["FJI", "review", "(0, 1]"]),
        ({"FJI": {"alert": 1.5}}, ["FJI", "alert", "(0, 1]"]),
        ({"FJI": {"alert": "high"}}, ["FJI", "alert", "number"]),
        ({"FJI": {"alert": True}}, ["FJI", "alert", "number"]),
        ({"FJI": {"alarm": 0.9}}, ["FJI", "alarm", "alert and review"]),
        ({"FJI": 0.9}, ["FJI", "expected an object"]),
        ({"fji": {"alert": 0.9}, "FJI": {"alert": 0.95}}, ["FJI", "twice"]),
        ({" ": {"alert": 0.9}}, ["member code is empty"]),
    ],
)
def test_bad_bands_are_refused_naming_the_member_and_the_band(bands, words):
    with pytest.raises(ValidationError) as caught:
        HubSettings(screening_bands=bands)
    message = str(caught.value)
    assert "screening_bands" in message
    for word in words:
        assert word in message


def test_the_cli_reports_bad_bands_as_a_bad_setting():
    runner = CliRunner()
    env = {"APIHUB_SCREENING_BANDS": '{"fji": {"alert": 0.8, "review": 0.9}}'}
    result = runner.invoke(app, ["hits", "follow", "--member", "FJI", "--token", "t"], env=env)
    assert result.exit_code == 2
    assert "bad settings: APIHUB_SCREENING_BANDS" in result.output and "FJI: review 0.9" in result.output
    not_json = runner.invoke(
        app, ["hits", "follow", "--member", "FJI", "--token", "t"], env={"APIHUB_SCREENING_BANDS": "{FJI"}
    )
    assert not_json.exit_code == 2 and "bad settings" in not_json.output and "screening_bands" in not_json.output
