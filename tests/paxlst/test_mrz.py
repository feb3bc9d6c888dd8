"""ICAO Doc 9303 MRZ parsing and check digits, against the specimens printed in Doc 9303 Parts 4 to 7."""

from __future__ import annotations

import pytest

from services.paxlst.mrz import MrzFormatError, check_digit, verify_mrz

# Doc 9303 Part 4 (TD3 passport), Part 5 (TD1), Part 6 (TD2), Part 7 (MRV-A, MRV-B): the "Utopia" specimens.
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
TD2 = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")
MRV_A = ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L8988901C4XXX4009078F96121096ZE184226B<<<<<<")
MRV_B = ("V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "L8988901C4XXX4009078F9612109<<<<<<<<")


def _mutate(lines: tuple[str, ...], line: int, pos: int) -> str:
    """The zone with one character changed by a value the check digit sees: a digit to the next digit, a
    letter to the next letter, a filler (value 0) to B (11). ('<' to 'A' would change the value by 10,
    which no 7-3-1 check digit can see.)"""
    chars = list(lines[line])
    c = chars[pos]
    if c.isdigit():
        chars[pos] = str((int(c) + 1) % 10)
    elif c == "<":
        chars[pos] = "B"
    else:
        chars[pos] = "A" if c == "Z" else chr(ord(c) + 1)
    return "\n".join(lines[:line] + ("".join(chars),) + lines[line + 1 :])


# -- check digits ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "digit"),
    [
        ("L898902C3", "6"),  # TD3 specimen document number
        ("740812", "2"),  # birth date
        ("120415", "9"),  # expiry
        ("ZE184226B<<<<<", "1"),  # personal number
        ("L898902C36" + "7408122" + "1204159ZE184226B<<<<<1", "0"),  # composite
        ("D23145890", "7"),  # TD1 document number
        ("", "0"),
        ("<<<<<<<<<", "0"),
    ],
)
def test_check_digit_of_icao_specimen_fields(data, digit):
    assert check_digit(data) == digit


def test_check_digit_rejects_characters_outside_the_mrz_alphabet_without_echoing_them():
    with pytest.raises(ValueError, match="position 3") as exc:
        check_digit("AB-12")
    assert "-" not in str(exc.value).replace("A-Z", "").replace("0-9", "")
    with pytest.raises(ValueError):
        check_digit("ab12")


# -- the five formats ------------------------------------------------------------------------------------
def test_td3_specimen_parses_and_every_check_digit_holds():
    r = verify_mrz("\n".join(TD3))
    assert r.ok and r.failed_checks == ()
    assert (r.format, r.document_code, r.issuing_state, r.nationality) == ("TD3", "P", "UTO", "UTO")
    assert (r.document_number, r.birth_date, r.sex, r.expiry) == ("L898902C3", "740812", "F", "120415")
    assert (r.surname, r.given_names, r.optional_data) == ("ERIKSSON", "ANNA MARIA", "ZE184226B")


def test_td1_specimen_parses_with_three_lines_of_30():
    r = verify_mrz("\n".join(TD1))
    assert r.ok
    assert (r.format, r.document_code, r.issuing_state, r.nationality) == ("TD1", "I", "UTO", "UTO")
    assert (r.document_number, r.birth_date, r.sex, r.expiry) == ("D23145890", "740812", "F", "120415")
    assert (r.surname, r.given_names) == ("ERIKSSON", "ANNA MARIA")


def test_td2_specimen_parses():
    r = verify_mrz("\n".join(TD2))
    assert r.ok
    assert (r.format, r.document_number, r.nationality, r.expiry) == ("TD2", "D23145890", "UTO", "120415")
    assert (r.surname, r.given_names) == ("ERIKSSON", "ANNA MARIA")


@pytest.mark.parametrize(("zone", "fmt"), [(MRV_A, "MRV-A"), (MRV_B, "MRV-B")])
def test_visa_specimens_parse_and_have_no_composite(zone, fmt):
    r = verify_mrz("\n".join(zone))
    assert r.ok
    assert (r.format, r.document_code, r.document_number, r.nationality) == (fmt, "V", "L8988901C", "XXX")
    assert (r.birth_date, r.expiry) == ("400907", "961210")
    # A visa has no composite check digit: changing the last character of line 2 is not a failure.
    assert verify_mrz(_mutate(zone, 1, len(zone[1]) - 1)).ok


@pytest.mark.parametrize(
    "text",
    [
        TD3[0] + TD3[1],  # concatenated
        "  " + TD3[0] + "\r\n" + TD3[1] + "\n\n",  # CRLF and surrounding whitespace
        "\t" + TD3[0] + "\n" + TD3[1] + "   ",
    ],
)
def test_lines_may_be_concatenated_or_separated_and_padded(text):
    assert verify_mrz(text) == verify_mrz("\n".join(TD3))


# -- mutated digits: each failure is named ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "pos", "failed"),
    [
        (1, 0, ("document_number", "composite")),  # document number data
        (1, 9, ("document_number", "composite")),  # its check digit (the composite covers it too)
        (1, 14, ("birth_date", "composite")),
        (1, 19, ("birth_date", "composite")),
        (1, 22, ("expiry", "composite")),
        (1, 27, ("expiry", "composite")),
        (1, 29, ("optional_data", "composite")),
        (1, 42, ("optional_data", "composite")),
        (1, 43, ("composite",)),
        (1, 11, ()),  # nationality: no check digit of its own, outside the composite
        (1, 20, ()),  # sex
    ],
)
def test_td3_mutations_name_the_failing_check_digits(line, pos, failed):
    assert verify_mrz(_mutate(TD3, line, pos)).failed_checks == failed


@pytest.mark.parametrize(
    ("line", "pos", "failed"),
    [
        (0, 6, ("document_number", "composite")),
        (0, 14, ("document_number", "composite")),
        (0, 20, ("composite",)),  # optional data 1: covered by the composite only
        (1, 2, ("birth_date", "composite")),
        (1, 9, ("expiry", "composite")),
        (1, 20, ("composite",)),  # optional data 2
        (1, 29, ("composite",)),
        (2, 3, ()),  # name: no check digit
    ],
)
def test_td1_mutations_name_the_failing_check_digits(line, pos, failed):
    assert verify_mrz(_mutate(TD1, line, pos)).failed_checks == failed


@pytest.mark.parametrize(
    ("pos", "failed"),
    [
        (3, ("document_number", "composite")),
        (15, ("birth_date", "composite")),
        (25, ("expiry", "composite")),
        (35, ("composite",)),
    ],
)
def test_td2_mutations_name_the_failing_check_digits(pos, failed):
    assert verify_mrz(_mutate(TD2, 1, pos)).failed_checks == failed


@pytest.mark.parametrize(("zone", "pos"), [(MRV_A, 9), (MRV_B, 2)])
def test_visa_document_number_mutation_fails_its_check(zone, pos):
    assert verify_mrz(_mutate(zone, 1, pos)).failed_checks == ("document_number",)


# -- optional data and long document numbers ---------------------------------------------------------------
def _td3_line2(personal: str, personal_check: str) -> str:
    head = "L898902C36UTO7408122F1204159"
    body = head + f"{personal:<<14}" + personal_check
    return body + check_digit(body[0:10] + body[13:20] + body[21:43])


@pytest.mark.parametrize("personal_check", ["<", "0"])
def test_td3_empty_personal_number_may_have_filler_or_zero_check(personal_check):
    assert verify_mrz(TD3[0] + _td3_line2("", personal_check)).ok


def test_td3_empty_personal_number_with_another_digit_fails():
    assert verify_mrz(TD3[0] + _td3_line2("", "3")).failed_checks == ("optional_data",)


def test_td3_personal_number_with_filler_check_fails():
    assert verify_mrz(TD3[0] + _td3_line2("ZE184226B", "<")).failed_checks == ("optional_data",)


def _td1_long_number(number: str, digit: str | None = None) -> str:
    """A TD1 with a document number longer than 9 characters (Doc 9303 Part 5, 4.2.2 note)."""
    digit = digit or check_digit(number)
    l1 = f"I<UTO{number[:9]}<{number[9:] + digit:<<15}"
    l2 = "7408122F1204159UTO<<<<<<<<<<<"
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    return "\n".join((l1, l2, TD1[2]))


def test_td1_long_document_number_continues_in_the_optional_data():
    r = verify_mrz(_td1_long_number("D23145890123"))
    assert r.ok
    assert (r.document_number, r.optional_data) == ("D23145890123", "")


def test_td1_long_document_number_with_wrong_check_digit_fails():
    wrong = str((int(check_digit("D23145890123")) + 1) % 10)
    assert verify_mrz(_td1_long_number("D23145890123", wrong)).failed_checks == ("document_number",)


def test_td2_long_document_number_continues_in_the_optional_data():
    number = "D2314589012"
    l2 = f"{number[:9]}<UTO7408122F1204159{number[9:] + check_digit(number):<<7}"
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:35])
    r = verify_mrz(TD2[0] + "\n" + l2)
    assert r.ok and r.document_number == number


def test_missing_document_number_check_digit_fails():
    zone = ("I<UTOD23145890<<<<<<<<<<<<<<<<", TD1[1], TD1[2])
    assert "document_number" in verify_mrz("\n".join(zone)).failed_checks


def test_german_issuer_is_d_with_fillers():
    l1 = "P<D<<MUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<"
    number, birth, expiry = "C01X00T47", "640812", "270228"
    l2 = f"{number}{check_digit(number)}D<<{birth}{check_digit(birth)}F{expiry}{check_digit(expiry)}"
    l2 += "<" * 14 + "<"
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:43])
    r = verify_mrz(l1 + "\n" + l2)
    assert (r.issuing_state, r.nationality) == ("D", "D")
    assert r.failed_checks == ()


# -- not a zone --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not 0"),
        (TD3[0], "not 44"),
        (TD3[0] + "\n" + TD3[1][:-1], "not 87"),
        (TD3[0][:-1] + "\n" + TD3[1] + "<", "lines of 43, 45"),  # right total, wrong lines
        (TD3[0] + "\n" + TD3[1].replace("Z", "z"), "character 29 of line 2"),
        (TD3[0] + "\n" + TD3[1].replace("<", "-", 1), "character 38 of line 2"),
    ],
)
def test_text_that_is_not_a_zone_raises_without_echoing_it(text, match):
    with pytest.raises(MrzFormatError, match=match) as exc:
        verify_mrz(text)
    message = str(exc.value)
    for secret in ("ERIKSSON", "L898902C3", "740812", "ZE184226B"):
        assert secret not in message
