"""The console's languages: English (the messages as written) and French, from one gettext catalogue per language.

services/console/locale/<lang>/LC_MESSAGES/messages.po is the catalogue translators edit (`pybabel extract` with
babel.cfg beside this package finds the messages; `pybabel update` merges them in). It is compiled in memory when the
console starts, so no compiled .mo file is kept in the repository or needed at build time. Templates use
``{% trans %}``/``_()`` (Jinja2's i18n extension), Python code ``gettext``; both follow the language of the request
being rendered (``using``). Dates are shown in the member's time zone, formatted for the language (Babel).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from io import BytesIO
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = {"en": "English", "fr": "Français"}
DEFAULT = "en"
_language: contextvars.ContextVar[str] = contextvars.ContextVar("console_language", default=DEFAULT)


def _load(language: str) -> Translations | None:
    source = resources.files("services.console") / "locale" / language / "LC_MESSAGES" / "messages.po"
    if not source.is_file():
        return None
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


_CATALOGUES = {lang: _load(lang) for lang in LANGUAGES if lang != DEFAULT}


def language_of(value: str | None, fallback: str = DEFAULT) -> str:
    return value if value in LANGUAGES else fallback


@contextmanager
def using(language: str) -> Iterator[None]:
    token = _language.set(language_of(language))
    try:
        yield
    finally:
        _language.reset(token)


def current() -> str:
    return _language.get()


def translate(message: str) -> str:
    """The message in the current language (as written when it has no translation): Jinja2's gettext."""
    catalogue = _CATALOGUES.get(_language.get())
    return catalogue.gettext(message) if catalogue else message


def translate_plural(singular: str, plural: str, n: int) -> str:
    catalogue = _CATALOGUES.get(_language.get())
    return catalogue.ngettext(singular, plural, n) if catalogue else (singular if n == 1 else plural)


def gettext(message: str, **values) -> str:
    """For Python code: the translated message with %(name)s placeholders filled from ``values``."""
    text = translate(message)
    return text % values if values else text


@functools.cache
def date_locale(language: str, member: str) -> str:
    """The locale dates are written in: the language as spoken in the member's country where Babel knows it
    (en_FJ, fr_NC: day first; en_MH: month first, as there), else the language's international form."""
    import pycountry
    from babel import Locale, UnknownLocaleError

    country = pycountry.countries.get(alpha_3=member.upper())
    if country is not None:
        try:
            Locale.parse(f"{language}_{country.alpha_2}")
            return f"{language}_{country.alpha_2}"
        except (UnknownLocaleError, ValueError):
            pass
    return "en_001" if language == "en" else language


def when(moment: datetime | None, time_zone: str, form: str = "medium", member: str = "") -> str:
    """A moment in the member's time zone, formatted for the current language in the member's country ("" for
    none)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    locale = date_locale(_language.get(), member)
    return format_datetime(moment, form, tzinfo=ZoneInfo(time_zone), locale=locale)
