"""The watchlist CSV reader (services.watchlist_csv), platform code: read_watchlist_rows reads every row and answers
each refused one with its line and field (the member console's upload preview); read_watchlist_csv, what `apihub
watchlist load` reads, refuses the file at the first of those same rows, in the same words."""

from __future__ import annotations

import pytest

from services import client
from services.watchlist_csv import (
    WATCHLIST_COLUMNS,
    WatchlistFileError,
    Wording,
    read_watchlist_csv,
    read_watchlist_rows,
    refusal_text,
)
from services.wire import manifest_pb2

HEADER = ",".join(WATCHLIST_COLUMNS) + "\n"

# Each row alone after the header: None for a row read, else the field it is refused at ("" for the row).
ROWS = [
    ("FJI-1,Tavola,Josefa,1980-01-02,m,fji,P1,fji,interest,\n", None),
    ("FJI-2, Naidu ,Ravi,1975,,,,,,fji\n", None),
    ("FJI-3,Koroi,Mere,1990-05,X,,,,,\n", None),
    ('FJI-4,"Waqa, Sera",,,F,,,,"quoted, comma",\n', None),
    ("FJI-5,Bad,Date,1990-02-30,,,,,,\n", "date_of_birth"),
    ("FJI-6,Bad,Sex,1990,Q,,,,,\n", "sex"),
    ("FJI-7,Con\x07trol,Char,1990,,,,,,\n", "surname"),
    ("FJI-8,Ne\x85xt,Line,1990,,,,,,\n", "surname"),  # NEL, a C1 control (at the end, stripped as a space)
    ("FJI-9,Extra,Field,1990,,,,,,,surplus\n", ""),
    ("FJI-10,Other,Owner,1990,,,,,,TON\n", "owner"),
]


def test_every_row_is_read_or_refused_with_its_line_and_field_in_file_order():
    text = HEADER + "".join(row for row, _ in ROWS)
    entries, refused = read_watchlist_rows(text, "FJI")
    assert [line for line, _ in entries] == [2, 3, 4, 5]
    assert [(line, field) for line, field, _ in refused] == [
        (line, field) for line, (_, field) in enumerate(ROWS, start=2) if field is not None
    ]
    first, second, _, fourth = (entry for _, entry in entries)
    assert (first.sex, first.nationality, first.document_issuer, first.owner) == (
        manifest_pb2.SEX_MALE,
        "FJI",
        "FJI",
        "FJI",
    )
    assert (second.surname, second.owner, second.date_of_birth.year) == ("Naidu", "FJI", 1975)
    assert (fourth.surname, fourth.category) == ("Waqa, Sera", "quoted, comma")
    reasons = {line: reason for line, _, reason in refused}
    assert reasons[7] == "must be M, F, X or empty"
    assert reasons[8] == "control character U+0007"
    assert reasons[10] == "11 fields, the header has 10"
    assert reasons[11] == "'TON' differs from --member FJI"
    assert reasons[9] == "control character U+0085 (a cp1252 file read as latin-1? try --encoding cp1252)"
    assert not any(value in reason for value in ("Con", "Ne", "\x07", "\x85") for reason in reasons.values())


@pytest.mark.parametrize(("row", "field"), ROWS)
def test_the_command_reads_a_row_as_the_rows_reader_does(row, field):
    text = HEADER + row
    entries, refused = read_watchlist_rows(text, "FJI")
    if field is None:
        assert refused == [] and read_watchlist_csv(text, "FJI") == [entry for _, entry in entries]
    else:
        assert entries == [] and [(line, f) for line, f, _ in refused] == [(2, field)]
        with pytest.raises(WatchlistFileError) as error:
            read_watchlist_csv(text, "FJI")
        assert str(error.value) == refusal_text(refused[0])
        assert str(error.value).startswith(f"line 2, {field}: " if field else "line 2: ")


def test_the_command_refuses_a_file_at_its_first_refused_row():
    text = HEADER + ROWS[0][0] + ROWS[5][0] + ROWS[4][0]
    with pytest.raises(WatchlistFileError, match=r"^line 3, sex: must be M, F, X or empty$"):
        read_watchlist_csv(text, "FJI")


def test_a_header_without_the_columns_or_with_too_many_refuses_the_file_at_line_1():
    assert read_watchlist_rows("id,name\n1,x\n", "FJI") == (
        [],
        [(1, "", f"header lacks columns {', '.join(WATCHLIST_COLUMNS)}; expected {','.join(WATCHLIST_COLUMNS)}")],
    )
    assert read_watchlist_rows("", "FJI")[1][0][:2] == (1, "")
    wide = HEADER.rstrip("\n") + ",x" * 60 + "\n" + ROWS[0][0]
    assert read_watchlist_rows(wide, "FJI") == ([], [(1, "", "header has 70 columns, at most 64")])


def test_an_unreadable_row_ends_the_reading_after_the_rows_before_it():
    huge = f"FJI-2,{'X' * 200_000},A,1980,M,FJI,,,t,\n"
    entries, refused = read_watchlist_rows(HEADER + ROWS[0][0] + ROWS[5][0] + huge + ROWS[1][0], "FJI")
    assert [line for line, _ in entries] == [2]
    assert [(line, field) for line, field, _ in refused] == [(3, "sex"), (4, "")]
    assert refused[1][2].startswith("not a readable CSV row: field larger than")
    assert refused[1][2].endswith("the rest of the file was not read")


def test_without_a_member_every_row_names_its_owner():
    entries, refused = read_watchlist_rows(HEADER + ROWS[1][0] + ROWS[0][0] + ROWS[9][0], None)
    assert [(line, entry.owner) for line, entry in entries] == [(2, "FJI"), (4, "TON")]
    assert refused == [(3, "owner", "required (the member whose entry this is)")]


def test_the_advice_is_in_the_readers_words():
    text = HEADER + "FJI-1,O\x92Neil,Sean,1980,,,,,,\n" + "FJI-2,Other,Owner,1990,,,,,,ton\n"
    _, refused = read_watchlist_rows(text, "FJI")
    assert refused[0] == (
        2,
        "surname",
        "control character U+0092 (a cp1252 file read as latin-1? try --encoding cp1252)",
    )
    page = Wording(cp1252="choose cp1252", other_owner="'{given}' is not your member ({owner})")
    _, refused = read_watchlist_rows(text, "FJI", wording=page)
    assert [reason for _, _, reason in refused] == [
        "control character U+0092 (a cp1252 file read as latin-1? choose cp1252)",
        "'ton' is not your member (FJI)",
    ]


def test_services_client_re_exports_the_reader():
    assert client.read_watchlist_csv is read_watchlist_csv
    assert client.WatchlistFileError is WatchlistFileError
    assert client.WATCHLIST_COLUMNS is WATCHLIST_COLUMNS
