"""The console's account pages in headless Chromium: sign-in (with the mouse and with the keyboard only), a wrong
password, French, the Content Security Policy at work, roles, and one member's officer against another member's.

Every page a test opens is watched for CSP violations and script errors (tests/browser/conftest.py `open_page`).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.consolekit import PASSWORD, WAIT_MS, sign_in, tab_to

pytestmark = pytest.mark.integration


def test_an_officer_signs_in_to_their_member_and_a_wrong_password_is_refused(open_page):
    page = open_page()
    page.goto("/officers")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/officers$"))  # no session: sent to sign in first
    page.get_by_label("Member").select_option("FJI")
    page.get_by_label("User name").fill("litia")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong member, user name or password.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/officers$"))  # where they were going
    expect(page.get_by_role("heading", level=1)).to_have_text("Officers of Fiji")
    expect(page.get_by_text("litia (member-admin)")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "apihub_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.goto("/officers")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/officers$"))  # the session ended with the sign-out


def test_signing_in_works_with_the_keyboard_alone(open_page):
    page = open_page()
    page.goto("/sign-in?next=/officers")
    # The first Tab reaches the skip link, which takes the focus past the header to the page's own content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown when focused
    tab_to(page, page.get_by_label("Member"))
    page.keyboard.type("Tonga")  # a select picks the option whose label starts with what is typed
    expect(page.get_by_label("Member")).to_have_value("TON")
    page.keyboard.press("Tab")
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type("sione")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/officers$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Officers of Tonga")
    # The page's own controls are reachable too: the form that adds an officer, and its button.
    tab_to(page, page.get_by_label("User name"))
    tab_to(page, page.get_by_role("button", name="Add", exact=True))


def test_french_before_and_after_sign_in(open_page):
    page = open_page()
    page.goto("/sign-in?next=/officers")
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change language").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    page.get_by_label("Membre").select_option("FJI")
    page.get_by_label("Nom d'utilisateur").fill("litia")
    page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Membre, nom d'utilisateur ou mot de passe incorrect.")

    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
    page.goto("/officers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Agents : Fiji")  # the session is in French
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()

    page.get_by_label("Langue").select_option("en")
    page.get_by_role("button", name="Changer de langue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Officers of Fiji")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_content_security_policy_blocks_injected_inline_code(open_page, watched):
    page = open_page()
    sign_in(page, "FJI", "litia", next_path="/officers")
    assert watched.violations == []  # the console's own pages need no exception to the policy
    # Markup that slipped into a page (what escaping exists to prevent) would still not run.
    page.evaluate(
        """() => {
            window.ran = [];
            document.body.insertAdjacentHTML(
                'beforeend', '<img src="data:," onload="window.ran.push(1)" onerror="window.ran.push(1)">');
            const script = document.createElement('script');
            script.textContent = 'window.ran.push(2)';
            document.body.append(script);
        }"""
    )
    expect(page.locator("img[onload]")).to_have_count(1)
    for _ in range(WAIT_MS // 100):  # until the browser has reported both (bounded)
        if len(watched.violations) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(watched.violations) >= 2, watched.violations
    assert page.evaluate("() => window.ran") == []  # neither ran
    assert all("Content Security Policy" in v for v in watched.violations)
    watched.violations.clear()  # seen and expected: the fixture's check is for the console's own pages


def test_an_analyst_is_refused_the_officers_page(open_page):
    page = open_page()
    sign_in(page, "FJI", "josefa", next_path="/officers")
    expect(page.get_by_role("alert")).to_have_text("Your role does not allow this page.")
    expect(page.get_by_role("link", name="Officers")).to_have_count(0)  # and the navigation does not offer it


def test_one_members_admin_sees_and_changes_nothing_of_another_members_officers(open_page):
    page = open_page()
    sign_in(page, "TON", "sione", next_path="/officers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Officers of Tonga")
    table = page.get_by_role("table", name="Officers")
    expect(table).to_contain_text("sione")
    expect(table).not_to_contain_text("litia")
    expect(table).not_to_contain_text("josefa")
    # A form posted by hand at Fiji's officer, with Tonga's session and its valid form token: as for no one.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = page.request.post("/officers/litia", form={"csrf": csrf, "action": "disable"}, max_redirects=0)
    assert response.status == 404
    assert "litia" not in response.text().replace('value="/officers/litia"', "")  # but its own request's path
    # Fiji's admin is still active.
    other = open_page()
    sign_in(other, "FJI", "litia", next_path="/officers")
    expect(other.get_by_role("row", name=re.compile("^litia"))).to_contain_text("active")


def test_a_member_admin_adds_an_officer_who_then_signs_in(open_page):
    page = open_page()
    sign_in(page, "TON", "sione", next_path="/officers")
    page.get_by_label("User name").fill("mele")
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_label("Password (at least 12 characters)").fill("another synthetic passphrase")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Officer added.")
    expect(page.get_by_role("row", name=re.compile("^mele"))).to_contain_text("analyst")

    colleague = open_page()
    sign_in(colleague, "TON", "mele", password="another synthetic passphrase", next_path="/hits")
    expect(colleague.get_by_text("mele (analyst)")).to_be_visible()
