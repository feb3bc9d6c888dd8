from __future__ import annotations

import pytest

from services.auth import issue_token, verify_token
from services.errors import AuthError


def test_token_round_trip_names_the_principal():
    p = verify_token("s3cret", issue_token("s3cret", "carrier", "fj"))
    assert (p.kind, p.code) == ("carrier", "FJ")


def test_token_signed_with_another_secret_is_refused():
    with pytest.raises(AuthError):
        verify_token("s3cret", issue_token("other", "member", "FJI"))


def test_token_with_altered_subject_is_refused():
    token = issue_token("s3cret", "member", "FJI")
    forged = token.replace(".FJI.", ".WSM.")
    with pytest.raises(AuthError):
        verify_token("s3cret", forged)


@pytest.mark.parametrize("token", ["", "Bearer", "apihub1.member.FJI", "x.member.FJI.sig", "apihub1.admin.FJI.sig"])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(AuthError):
        verify_token("s3cret", token)


def test_serial_credentials_are_distinct_and_verify_for_the_same_principal():
    first, second = issue_token("s3cret", "member", "FJI"), issue_token("s3cret", "member", "FJI", serial=2)
    assert first != second
    assert verify_token("s3cret", second).code == "FJI"
    with pytest.raises(AuthError):
        verify_token("s3cret", second.replace(".2.", ".3."))
