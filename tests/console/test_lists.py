"""The watchlist page: browse and search (paged, by POST, never logged), upload with a preview of what changes
(added, removed, changed fields, refused rows with line and field), apply only a preview of one's own, roles."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from html import escape

import pytest

from services.console import i18n
from services.console.pages.lists import CurrentList, Previews, make_preview, read_upload
from services.wire import delivery_pb2, manifest_pb2
from tests.console.conftest import client_of, make_console, sign_in

HEADER = "entry_id,surname,given_names,date_of_birth,sex,nationality,document_number,document_issuer,category,owner\n"


def entry(entry_id, surname, given="", dob=(1980, 1, 2), category="interest", document="", owner="FJI"):
    return delivery_pb2.WatchlistEntry(
        entry_id=entry_id,
        surname=surname,
        given_names=given,
        date_of_birth=manifest_pb2.PartialDate(year=dob[0], month=dob[1], day=dob[2]),
        category=category,
        document_number=document,
        owner=owner,
    )


class FakeGateway:
    """The calls of services.console.gateway.HubGateway that the watchlist page makes, over lists held here."""

    def __init__(self, lists=None):
        self.lists = {member: list(entries) for member, entries in (lists or {}).items()}
        self.scopes = {member: delivery_pb2.WATCHLIST_SCOPE_REGIONAL for member in self.lists}
        self.loads = []
        self.users = set()  # the officers named in the calls

    def watchlist(self, member, query="", offset=0, limit=50, user=""):
        self.users.add(user)
        if member not in self.lists:
            return delivery_pb2.ListWatchlistResponse()
        entries = self.lists[member]
        size = len(entries)
        if query:
            q = query.casefold()
            entries = [
                e
                for e in entries
                if any(q in v.casefold() for v in (e.surname, e.given_names, e.entry_id, e.category, e.document_number))
            ]
        reply = delivery_pb2.ListWatchlistResponse(
            entries=entries[offset : offset + limit], total=len(entries), list_size=size, scope=self.scopes[member]
        )
        reply.loaded_at.FromDatetime(datetime(2026, 2, 27, 22, 30, tzinfo=UTC))
        return reply

    def load_watchlist(self, member, user, entries, scope):
        self.loads.append((member, user, [e.entry_id for e in entries], scope))
        self.lists[member] = [delivery_pb2.WatchlistEntry(**_fields(e), owner=member) for e in entries]
        self.scopes[member] = scope
        return delivery_pb2.LoadWatchlistResponse(entries=len(entries))


def _fields(e):
    copy = delivery_pb2.WatchlistEntry()
    copy.CopyFrom(e)
    copy.ClearField("owner")
    return {f.name: v for f, v in copy.ListFields()}


CURRENT = [
    entry("FJI-1", "Tavola", "Josefa"),
    entry("FJI-2", "Naidu", "Ravi", category="interest"),
    entry("FJI-3", "Koroi", "Mere"),
]
# Keeps FJI-1, changes FJI-2's surname and category, drops FJI-3, adds FJI-4; refuses four rows.
UPLOAD = (
    HEADER
    + "FJI-1,Tavola,Josefa,1980-01-02,,,,,interest,\n"
    + "FJI-2,Naidu-Singh,Ravi,1980-01-02,,,,,smuggling,FJI\n"
    + "FJI-4,Waqa,Sera,1990,F,FJI,P1234567,FJI,interest,\n"
    + "FJI-5,Bad,Date,1990-13-40,,,,,interest,\n"
    + "TON-9,Other,Member,1990,,,,,interest,TON\n"
    + "FJI-1,Twice,Used,1990,,,,,interest,\n"
    + "FJI-6,,Nosurname,1990,,,,,interest,\n"
)
CLEAN = HEADER + "FJI-1,Tavola,Josefa,1980-01-02,,,,,interest,\nFJI-4,Waqa,Sera,1990,F,FJI,P1234567,FJI,interest,\n"


@pytest.fixture
def gateway():
    return FakeGateway({"FJI": CURRENT, "TON": [entry("TON-1", "Fifita", owner="TON")]})


@pytest.fixture
def console(gateway):
    return make_console(gateway=gateway)


def signed_in(console, member, username):
    client = client_of(console)
    return client, sign_in(client, member, username)


def upload(client, csrf, text, scope="regional", encoding=""):
    return client.post(
        "/lists/preview",
        data={"csrf": csrf, "scope": scope, "encoding": encoding},
        files={"file": ("list.csv", text.encode("utf-8") if isinstance(text, str) else text, "text/csv")},
    )


def preview_id(answer) -> str:
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/lists/preview/([A-Za-z0-9_-]+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def test_the_preview_shows_added_removed_changed_and_refused_rows_with_line_and_field(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, csrf, UPLOAD))
    page = bob.get(f"/lists/preview/{pid}")
    assert page.status_code == 200
    html = page.text
    parts = ("added", "removed", "changed", "refused")
    counts = {k: re.search(rf'id="count-{k}">(\d+)<', html).group(1) for k in parts}
    assert counts == {"added": "1", "removed": "1", "changed": "1", "refused": "4"}
    assert re.search(r'id="count-unchanged">1<', html)
    added = html.split('id="added"')[1].split("<h2")[0]
    assert "FJI-4" in added and "Waqa" in added
    removed = html.split('id="removed"')[1].split("<h2")[0]
    assert "FJI-3" in removed and "Koroi" in removed
    changed = html.split('id="changed"')[1].split("<h2")[0]
    assert "FJI-2" in changed
    assert re.search(r"<td>surname</td><td>Naidu</td><td>Naidu-Singh</td>", changed)
    assert re.search(r"<td>category</td><td>interest</td><td>smuggling</td>", changed)
    assert "given_names" not in changed  # unchanged fields are not listed
    refused = re.findall(r'<tr class="refused"><td>(\d+)</td><td>(\w*)</td><td>([^<]*)</td>', html)
    assert [(line, field) for line, field, _ in refused] == [
        ("5", "date_of_birth"),
        ("6", "owner"),
        ("7", "entry_id"),
        ("8", "surname"),
    ]
    assert "also on line 2" in refused[2][2]
    # A preview with refused rows cannot be applied, and nothing was loaded by previewing.
    assert "/apply" not in html
    assert gateway.loads == []
    assert bob.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf}).status_code == 409
    assert gateway.loads == []


def test_a_watchlist_is_loaded_only_by_applying_its_preview(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, csrf, CLEAN, scope="private"))
    assert gateway.loads == []
    page = bob.get(f"/lists/preview/{pid}")
    assert f'action="/lists/preview/{pid}/apply"' in page.text
    applied = bob.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf})
    assert applied.status_code == 303 and applied.headers["location"] == "/lists?loaded=2"
    assert 'id="scope-changes"' in page.text  # regional now
    assert gateway.loads == [("FJI", "bob", ["FJI-1", "FJI-4"], delivery_pb2.WATCHLIST_SCOPE_PRIVATE)]
    assert gateway.users == {"bob"}
    assert "Watchlist loaded: 2 entries." in bob.get(applied.headers["location"]).text
    # A preview applies once; an unknown id is not found.
    assert bob.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf}).status_code == 404
    assert bob.post("/lists/preview/nosuchpreview/apply", data={"csrf": csrf}).status_code == 404
    assert len(gateway.loads) == 1


def test_applying_needs_the_form_token(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    assert upload(bob, "forged", CLEAN).status_code == 403
    pid = preview_id(upload(bob, csrf, CLEAN))
    assert bob.post(f"/lists/preview/{pid}/apply", data={"csrf": "forged"}).status_code == 403
    assert gateway.loads == []


def test_another_officers_or_members_preview_is_not_found(console, gateway):
    bob, bob_csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, bob_csrf, CLEAN))
    carol, carol_csrf = signed_in(console, "FJI", "carol")  # a member admin of the same member
    tevita, tevita_csrf = signed_in(console, "TON", "tevita")  # another member's admin
    for other, csrf in ((carol, carol_csrf), (tevita, tevita_csrf)):
        assert other.get(f"/lists/preview/{pid}").status_code == 404
        assert other.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf}).status_code == 404
        assert other.post(f"/lists/preview/{pid}/discard", data={"csrf": csrf}).status_code == 404
    assert gateway.loads == []
    assert bob.get(f"/lists/preview/{pid}").status_code == 200  # still there for its officer


def test_a_list_changed_since_the_preview_is_not_overwritten(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, csrf, CLEAN))
    gateway.lists["FJI"] = [*CURRENT, entry("FJI-9", "Loaded", "Meanwhile")]  # another officer loaded a list
    answer = bob.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf})
    assert answer.status_code == 409
    assert "changed since this preview" in answer.text
    assert gateway.loads == []


def test_discarding_a_preview(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, csrf, CLEAN))
    assert bob.post(f"/lists/preview/{pid}/discard", data={"csrf": csrf}).status_code == 303
    assert bob.get(f"/lists/preview/{pid}").status_code == 404


def test_analysts_browse_but_do_not_upload(console, gateway):
    alice, csrf = signed_in(console, "FJI", "alice")
    page = alice.get("/lists")
    assert page.status_code == 200 and "Tavola" in page.text
    assert 'action="/lists/preview"' not in page.text
    assert upload(alice, csrf, CLEAN).status_code == 403
    bob, bob_csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, bob_csrf, CLEAN))
    assert alice.get(f"/lists/preview/{pid}").status_code == 403
    assert alice.post(f"/lists/preview/{pid}/apply", data={"csrf": csrf}).status_code == 403
    assert gateway.loads == []


def test_a_member_sees_only_its_own_entries(console):
    sione, _ = signed_in(console, "TON", "sione")
    page = sione.get("/lists")
    assert "Fifita" in page.text and "Tavola" not in page.text
    # Dates in the member's time zone, written as in its country: 22:30 UTC is the next morning in Nuku'alofa.
    loaded = datetime(2026, 2, 27, 22, 30, tzinfo=UTC)  # FakeGateway's loaded_at
    ton = console.directory.members["TON"]
    with i18n.using("en"):
        written = i18n.when(loaded, ton.time_zone, member="TON")
    assert "28" in written and "11:30" in written
    assert f'id="list-facts">1 entry, loaded {escape(written)}.\n' in page.text


def test_a_member_without_a_list(console):
    listless = make_console(gateway=FakeGateway({}))
    bob, csrf = signed_in(listless, "FJI", "bob")
    page = bob.get("/lists")
    assert page.status_code == 200 and "no watchlist loaded" in page.text
    bob.post("/language", data={"csrf": csrf, "language": "fr", "next": "/lists"})
    assert "aucune liste de surveillance" in bob.get("/lists").text


def test_french_counts_of_entries(console):
    sione, csrf = signed_in(console, "TON", "sione")
    sione.post("/language", data={"csrf": csrf, "language": "fr", "next": "/lists"})
    assert re.search(r'id="list-facts">1 entrée, chargée le', sione.get("/lists").text)


def test_signed_out_pages_send_to_sign_in_and_posts_answer_401(console):
    client = client_of(console)
    assert client.get("/lists").status_code == 303
    assert client.post("/lists/search", data={"query": "x"}).status_code in (401, 403)


def test_browsing_and_searching_are_paged_and_the_search_is_posted_and_never_logged(gateway, caplog):
    gateway.lists["FJI"] = [entry(f"FJI-{i:03d}", "Smith" if i % 2 else "Jones", "Kim") for i in range(120)]
    console = make_console(gateway=gateway)
    alice, csrf = signed_in(console, "FJI", "alice")
    first = alice.get("/lists")
    assert "Entries 1 to 50 of 120." in first.text and "Page 1 of 3" in first.text
    assert first.text.count("<td>FJI-") == 50
    last = alice.get("/lists?page=3")
    assert "Entries 101 to 120 of 120." in last.text and last.text.count("<td>FJI-") == 20
    assert 'href="/lists?page=2"' in last.text and "page=4" not in last.text
    # The search form posts; its paging posts the query again rather than putting it in a link.
    assert re.search(r'<form method="post" action="/lists/search"', first.text)
    with caplog.at_level(logging.DEBUG):
        found = alice.post("/lists/search", data={"csrf": csrf, "query": "smith", "page": "2"})
    assert found.status_code == 200
    assert "Entries 51 to 60 of 60 matching the search." in found.text
    assert found.text.count("<td>Smith</td>") == 10 and "<td>Jones</td>" not in found.text
    links = "".join(re.findall(r'href="[^"]*"', found.text))
    assert 'name="query" value="smith"' in found.text and "smith" not in links
    assert not [r for r in caplog.records if "smith" in r.getMessage().lower()]
    assert alice.post("/lists/search", data={"csrf": "forged", "query": "smith"}).status_code == 403
    assert alice.post("/lists/search", data={"csrf": csrf, "query": "x" * 101}).status_code == 422


def test_a_file_in_another_encoding_and_one_that_does_not_decode(console, gateway):
    bob, csrf = signed_in(console, "FJI", "bob")
    latin = (HEADER + "FJI-7,Müller,Zoé,1980,,,,,interest,\n").encode("cp1252")
    refused = upload(bob, csrf, latin)
    assert refused.status_code == 422 and "line 2" in refused.text and "choose its encoding" in refused.text
    pid = preview_id(upload(bob, csrf, latin, encoding="cp1252"))
    assert "Müller" in bob.get(f"/lists/preview/{pid}").text


def test_a_header_without_the_columns_refuses_the_file():
    accepted, refused = read_upload("id,name\n1,x\n", "FJI")
    assert accepted == [] and [(r.line, r.field) for r in refused] == [(1, "")]
    assert "entry_id" in refused[0].reason


def test_previews_expire_and_are_bounded_per_officer_and_in_all():
    now = [0.0]
    previews = Previews(ttl_s=60, per_officer=2, total=3, clock=lambda: now[0])

    def made(member, username):
        p = make_preview(member, username, 1, CurrentList([], 0, ""), [], [], now[0])
        previews.put(p)
        return p.id

    a1, a2 = made("FJI", "bob"), made("FJI", "bob")
    a3 = made("FJI", "bob")  # bob's oldest gives way
    assert previews.get("FJI", "bob", a1) is None
    assert previews.get("FJI", "bob", a2) and previews.get("FJI", "bob", a3)
    c1 = made("FJI", "carol")
    t1 = made("TON", "tevita")  # the console's oldest gives way
    assert previews.get("FJI", "bob", a2) is None and len(previews) == 3
    assert previews.get("FJI", "carol", t1) is None and previews.get("TON", "tevita", c1) is None
    now[0] = 61
    assert previews.get("TON", "tevita", t1) is None and len(previews) == 0


def test_pages_carry_no_inline_script_or_style(console):
    bob, csrf = signed_in(console, "FJI", "bob")
    pid = preview_id(upload(bob, csrf, UPLOAD))
    for page in (bob.get("/lists"), bob.get(f"/lists/preview/{pid}")):
        assert "<script>" not in page.text and " style=" not in page.text
        assert not re.search(r"\son[a-z]+=", page.text)
