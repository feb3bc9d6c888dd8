"""A generated, seeded quality set for watchlist screening, and its measurement.

Synthetic people only: names are drawn from pools of common Pacific, Asian, European and Arabic-transliterated
names and combined at random, dates of birth and document numbers are random. The set has:

* watchlist entries (one list, regional scope): the targets of the variants, plus background entries;
* variant travellers, each a true variant of one entry, by VARIANT_TYPES;
* decoys: the same name as an entry with another date of birth and document (another person of that name),
  and similar names (same surname, another given name; or one edit away) with another date of birth;
* innocent travellers: random people.

Measured: recall per variant type (the true entry among the matches), precision over every match (a match on
a decoy, an innocent, or a wrong entry is a false positive), and false alerts per 10,000 innocent travellers,
with the date-of-birth evidence of the innocents' alerts.

The pools hold about 40 names per origin and field, so every name in the default set is a common one:
one innocent traveller in ten shares an entry's exact full name (nearly half of those with one given name
and one surname do), and most of the remaining false alerts are innocents whose evidence is the same as a
true variant's (same full name and birth year, with a year-only date of birth). --rare-names draws that
share of name parts from a long tail of less common names instead (syllable compositions per origin), as
real name distributions have; the default (0) keeps the set as it was, a worst case for common names.

    .venv/bin/python -m services.profiler.variants --report [--entries-per-variant 400] [--innocents 100000]
        [--background 10000] [--seed 11] [--threshold 0.85] [--rare-names 0.5] [--sweep]
"""

from __future__ import annotations

import argparse
import functools
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from services.profiler.frames import name_key
from services.profiler.matching import DOB_TEXT
from services.profiler.watchlist import MATCH_THRESHOLD, WatchlistStore
from services.wire import delivery_pb2, manifest_pb2


def _words(text: str) -> list[str]:
    return text.split()


PACIFIC_GIVEN = _words(
    "SIONE VILIAMI SEMISI TEVITA MELE ANA LOSANA SALOTE ILAISAANE TALIA JONE EPELI JOSAIA MERE LITIA SAMISONI "
    "PENI MAKA FILIPO LUPE MALIA FETU SINA TAVITA IOANE SEFO PITA SIAOSI MOSESE NETANI INOKE ASENACA AKANESI "
    "KALOLAINE TOMASI SEINI LEOTA ULIMASAO VAEA TEUILA FAITALA LANIETA VASITI SAKIUSA ISIKELI"
)
PACIFIC_SURNAMES = _words(
    "TUPOU FIFITA TAUFA HAVILI LATU MAFI VAIPULU FONUA KAUFUSI TUILAEPA FAALOGO SAPOLU LEAVASA TAUILIILI "
    "NAIVALU RABUKA TUIVAGA QALO WAQA NAVUNISARAVI VUNIWAI KOROI RAVUVU TAMATEA NGATA PARATA TEINAKI MOALA "
    "FALEAFA SOLOMONA LEIATAUA VAKALOLOMA TANGITAU HALAPUA PULOTU KATOA LOLOHEA MATAELE SOPOAGA NAISORO"
)
ASIAN_GIVEN = _words(
    "WEI JUN MEI HIROSHI YUKI KENJI MINH THANH NGOC ANH JOSE MARIA RIZAL PRIYA RAHUL ANIL SUNITA RAJESH "
    "HYUN JIHO SEOYEON XIAOMING HAORAN YUTO SAKURA DEEPAK LAKSHMI ARJUN KAVITA TRUNG HUONG ROMMEL MARICEL"
)
ASIAN_SURNAMES = _words(
    "NGUYEN TRAN PHAM WANG ZHANG CHEN LIU HUANG TANAKA SATO SUZUKI KIM PARK CHOI SANTOS REYES CRUZ SHARMA "
    "PATEL SINGH KUMAR GUPTA WONG CHAN LIM TAN ONG WATANABE YAMAMOTO DELACRUZ BAUTISTA VILLANUEVA"
)
EUROPEAN_GIVEN = _words(
    "JEAN PIERRE MARIE HANS JUERGEN KLAUS ANNA SOFIA LUCAS OLIVER CHARLOTTE GEORGE WILLIAM JAMES EMMA "
    "ISABELLA MATTEO GIULIA PAOLO FRANCOIS SOREN BJORN INGRID LARS MAGNUS ELENA DMITRI NATALIA PIOTR AGNIESZKA"
)
EUROPEAN_SURNAMES = _words(
    "MUELLER SCHMIDT SCHNEIDER FISCHER DUBOIS LEFEBVRE ROSSI RUSSO SMITH JONES WILLIAMS BROWN OCONNOR "
    "MACDONALD NIELSEN JENSEN HANSEN KOWALSKI NOWAK GARCIA MARTINEZ FERNANDEZ IVANOV PETROV LINDQVIST "
    "ANDERSSON OLIVEIRA FERREIRA BECKER HOFFMANN"
)
ARABIC_GIVEN = _words(
    "MOHAMMED AHMED ALI OMAR YUSUF HASSAN HUSSEIN IBRAHIM KHALID ABDULLAH FATIMA AISHA MARYAM ZAINAB "
    "MUSTAFA SAID KARIM TARIQ NOUR LAYLA SAMIR WALID JAMAL RASHID HAMZA BILAL YASMIN SALMA"
)
ARABIC_SURNAMES = _words(
    "HADDAD KHOURY MANSOUR NASSER SALEH HAMDAN ABDULRAHMAN QURESHI BAKR RAHMAN SULTAN HASHEMI AZIZ OTHMAN "
    "ALRASHID ELSAYED ALMASRI JABER KHALIL SHARIF DARWISH TAHA YOUSSEF NAJJAR"
)
ORIGINS = (
    (PACIFIC_GIVEN, PACIFIC_SURNAMES),
    (ASIAN_GIVEN, ASIAN_SURNAMES),
    (EUROPEAN_GIVEN, EUROPEAN_SURNAMES),
    (ARABIC_GIVEN, ARABIC_SURNAMES),
)

# Spellings of one name that transliteration or local usage produce.
TRANSLITERATIONS = {
    "MOHAMMED": ["MUHAMMAD", "MOHAMED", "MOHAMMAD"],
    "AHMED": ["AHMAD"],
    "YUSUF": ["YOUSEF", "YOUSSEF"],
    "HUSSEIN": ["HUSSAIN", "HUSAIN"],
    "OMAR": ["UMAR"],
    "KHALID": ["KHALED"],
    "ABDULLAH": ["ABDALLAH"],
    "MUSTAFA": ["MOSTAFA"],
    "SAID": ["SAEED"],
    "FATIMA": ["FATMA"],
    "AISHA": ["AYSHA", "AICHA"],
    "ZAINAB": ["ZEINAB"],
    "HASSAN": ["HASAN"],
    "IBRAHIM": ["EBRAHIM"],
    "KARIM": ["KAREEM"],
    "TARIQ": ["TAREK"],
    "MANSOUR": ["MANSUR"],
    "NASSER": ["NASIR"],
    "SALEH": ["SALIH"],
    "YOUSSEF": ["YUSUF", "YOUSEF"],
    "OTHMAN": ["UTHMAN", "OSMAN"],
    "MUELLER": ["MULLER"],
    "JUERGEN": ["JURGEN"],
    "SOREN": ["SOEREN"],
    "BJORN": ["BJOERN"],
    "DMITRI": ["DMITRIY", "DIMITRI"],
    "IVANOV": ["IVANOFF"],
    "NATALIA": ["NATALYA"],
    "JAMAL": ["GAMAL"],
    "LAYLA": ["LEILA"],
    "TANGITAU": ["TANGITAHU"],
    "XIAOMING": ["HSIAOMING"],
    "CHEN": ["CHENG"],
    "ZHANG": ["CHANG"],
}
# How a name is written with its diacritics or apostrophes (the watchlist keeps this form).
DIACRITICS = {
    "JOSE": "José",
    "FRANCOIS": "François",
    "SOREN": "Søren",
    "BJORN": "Björn",
    "NGUYEN": "Nguyễn",
    "TUILAEPA": "Tuilaʻepa",
    "FAALOGO": "Faʻalogo",
    "OCONNOR": "O'Connor",
    "LEFEBVRE": "Lefèbvre",
    "HOFFMANN": "Höffmann",
    "ELENA": "Eléna",
    "FERNANDEZ": "Fernández",
    "MARTINEZ": "Martínez",
    "PHAM": "Phạm",
    "TRAN": "Trần",
    "THANH": "Thành",
    "LINDQVIST": "Lindqvíst",
    "NOWAK": "Nowák",
}
OCR_LETTERS = {"0": "O", "1": "I", "5": "S", "8": "B"}

VARIANT_TYPES = (
    "exact",
    "case_diacritics",
    "honorific",
    "swapped_fields",
    "missing_middle_name",
    "initials",
    "compound_joined",
    "typo_1_2_edits",
    "transliteration",
    "mrz_truncated",
    "dob_day_month_swap",
    "dob_year_off_by_one",
    "dob_partial",
    "document_ocr_only",
)
DECOY_TYPES = ("decoy_same_name", "decoy_similar_name")


@dataclass
class Person:
    surname: str
    given: str
    dob: str
    document: str


@dataclass
class QualitySet:
    entries: list[delivery_pb2.WatchlistEntry]
    travellers: pl.DataFrame  # surname_key, given_key, dob, documents, kind, truth (entry id or None)


def _dob(rng: random.Random, swappable: bool = False) -> str:
    year = rng.randint(1945, 2008)
    month = rng.randint(1, 12)
    day = rng.randint(1, 12) if swappable else rng.randint(1, 28)
    while swappable and day == month or (month, day) == (1, 1):
        day = rng.randint(1, 12 if swappable else 28)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _document(rng: random.Random) -> str:
    # Two letters and seven digits: random numbers of this space almost never collide by chance.
    return "".join(rng.choice("ABCDEFGHJKMNPRTUVWXY") for _ in range(2)) + "".join(
        rng.choice("0123456789") for _ in range(7)
    )


# Syllables of the less common names of each origin (ORIGINS order): the long tail of real name
# distributions, which the pools of common names above do not have.
TAIL_SYLLABLES = (
    "TA TU FI FA LE LO MA MO NA NI PA PU SA SE SI TO VA VI KA KE HO HA LA LU NGA FE AU EI LI SIO",
    "WEI JUN LIN HAO XIN MIN HUA JIA HOANG DUC VAN KYUNG SUNG HYE TAKA HIRO MASA DEV PRA RAJ SHI NA KO",
    "AN DER SON BERG MAR TIN EL LA KO VAL SKI OV ICH MANN STEIN RO BER NI CO LE WIT HOLM",
    "AL AB DUL RA HIM SA LIM HA MID NA SIR FA RID KA MAL JA BIR YA SIN ZA KI MOU",
)
TAIL_SIZE = {"given": 2_000, "surname": 4_000}  # distinct less common names per origin and field


@functools.cache
def _tail(origin: int, part: str) -> tuple[str, ...]:
    """TAIL_SIZE[part] names of 2-3 syllables of the origin, none of them in its common pool (fixed seed)."""
    rng = random.Random(f"tail-{origin}-{part}")
    syllables = TAIL_SYLLABLES[origin].split()
    common = set(ORIGINS[origin][0 if part == "given" else 1])
    names: set[str] = set()
    while len(names) < TAIL_SIZE[part]:
        name = "".join(rng.choice(syllables) for _ in range(rng.choice((2, 3, 3))))
        if name not in common:
            names.add(name)
    return tuple(sorted(names))


def _name(rng: random.Random, pool: list[str], origin: int, part: str, rare: float) -> str:
    """A common name of the pool, or with probability rare one of the origin's tail (rare 0: no draw)."""
    if rare and rng.random() < rare:
        return rng.choice(_tail(origin, part))
    return rng.choice(pool)


def _person(rng: random.Random, given_names: int | None = None, origin: int | None = None, rare: float = 0.0) -> Person:
    """A random person of an origin; each name part is a common one, or with probability rare a less common
    one (rare 0 draws exactly as the set always did: every part from the pools of common names)."""
    origin = rng.randrange(4) if origin is None else origin
    givens, surnames = ORIGINS[origin]
    count = given_names or rng.choice((1, 2, 2, 3))
    if rare:
        names: dict[str, None] = {}
        while len(names) < count:
            names[_name(rng, givens, origin, "given", rare)] = None
        given = " ".join(names)
    else:
        given = " ".join(rng.sample(givens, count))
    surname = _name(rng, surnames, origin, "surname", rare)
    if rng.random() < 0.25:  # double surnames (Hispanic, Pacific compound names)
        surname = f"{surname} {_name(rng, surnames, origin, 'surname', rare)}"
    return Person(surname, given, _dob(rng), _document(rng))


def _edit(rng: random.Random, word: str) -> str:
    """word with one edit after its first letter: a letter substituted, deleted, inserted, or two swapped.
    Drawn again when the edit changes nothing (a letter for itself, two equal letters swapped)."""
    while True:
        edited = _one_edit(rng, word)
        if edited != word:
            return edited


def _one_edit(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word)) if len(word) > 1 else 0
    letter = rng.choice("ABCDEFGHIJKLMNOPRSTUVY")
    op = rng.choice(("sub", "del", "ins", "swap"))
    if op == "sub":
        return word[:i] + letter + word[i + 1 :]
    if op == "del":
        return word[:i] + word[i + 1 :]
    if op == "ins":
        return word[:i] + letter + word[i:]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _entry_for(kind: str, rng: random.Random, rare: float = 0.0) -> Person:
    """An entry with what the variant type needs (several given names, a long name, a confusable number)."""
    if kind in ("missing_middle_name", "initials", "compound_joined"):
        return _person(rng, given_names=2 if kind == "compound_joined" else rng.choice((2, 3)), rare=rare)
    if kind == "transliteration":
        while True:
            p = _person(rng, rare=rare)
            if any(t in TRANSLITERATIONS for t in f"{p.surname} {p.given}".split()):
                return p
    if kind == "case_diacritics":
        while True:
            p = _person(rng, rare=rare)
            if any(t in DIACRITICS for t in f"{p.surname} {p.given}".split()):
                return p
    if kind == "mrz_truncated":
        while True:
            p = _person(rng, given_names=3, rare=rare)
            p.surname = f"{p.surname} {rng.choice(_person(rng, rare=rare).surname.split())}"
            if len(p.surname) + 2 + len(p.given) > 41:
                return p
    if kind == "typo_1_2_edits":
        while True:  # a typo needs a part of at least 4 letters (LIM WEI has none)
            p = _person(rng, rare=rare)
            if any(len(t) >= 4 for t in f"{p.surname} {p.given}".split()):
                return p
    if kind == "dob_day_month_swap":
        p = _person(rng, rare=rare)
        p.dob = _dob(rng, swappable=True)
        return p
    p = _person(rng, rare=rare)
    if kind == "document_ocr_only":
        while not any(c in OCR_LETTERS for c in p.document[2:]):
            p.document = _document(rng)
    return p


def _variant(kind: str, e: Person, rng: random.Random, rare: float = 0.0) -> Person:
    """A traveller who is the entry's person, written as the variant type says."""
    t = Person(e.surname, e.given, e.dob, _document(rng) if rng.random() < 0.5 else e.document)
    if kind == "case_diacritics":
        # The list keeps diacritics and mixed case; the carrier sent plain ASCII.
        t.surname, t.given = e.surname.title(), e.given.lower()
    elif kind == "honorific":
        t.given = f"{e.given} {rng.choice(('MR', 'MRS', 'MS', 'DR'))}"
    elif kind == "swapped_fields":
        t.surname, t.given = e.given, e.surname
    elif kind == "missing_middle_name":
        parts = e.given.split()
        t.given = " ".join(parts[:1] + parts[2:]) if len(parts) > 2 else parts[0]
    elif kind == "initials":
        parts = e.given.split()
        t.given = (
            " ".join([p[0] for p in parts]) if rng.random() < 0.5 else " ".join([parts[0]] + [p[0] for p in parts[1:]])
        )
    elif kind == "compound_joined":
        t.given = e.given.replace(" ", "") if rng.random() < 0.5 else e.given.replace(" ", "-")
    elif kind == "typo_1_2_edits":
        while (t.surname, t.given) == (e.surname, e.given):  # two edits may undo each other
            words = f"{e.surname}|{e.given}".replace(" ", "| ").split("|")
            for _ in range(rng.choice((1, 2))):
                options = [i for i, w in enumerate(words) if len(w.strip()) >= 4]
                if not options:  # the first edit shortened the only long part
                    break
                i = rng.choice(options)
                lead = " " if words[i].startswith(" ") else ""
                words[i] = lead + _edit(rng, words[i].strip())
            surname_parts = len(e.surname.split())
            t.surname = "".join(words[:surname_parts]).strip()
            t.given = "".join(words[surname_parts:]).strip()
    elif kind == "transliteration":
        swap = lambda w: rng.choice(TRANSLITERATIONS[w]) if w in TRANSLITERATIONS else w  # noqa: E731
        t.surname = " ".join(swap(w) for w in e.surname.split())
        t.given = " ".join(swap(w) for w in e.given.split())
    elif kind == "mrz_truncated":
        mrz = (e.surname.replace(" ", "<") + "<<" + e.given.replace(" ", "<"))[:39].rstrip("<")
        surname, _, given = mrz.partition("<<")
        t.surname, t.given = surname.replace("<", " "), given.replace("<", " ")
    elif kind == "dob_day_month_swap":
        y, m, d = e.dob.split("-")
        t.dob = f"{y}-{d}-{m}"
    elif kind == "dob_year_off_by_one":
        y, m, d = e.dob.split("-")
        t.dob = f"{int(y) + rng.choice((-1, 1)):04d}-{m}-{d}"
    elif kind == "dob_partial":
        t.dob = e.dob[:4] if rng.random() < 0.5 else e.dob[:4] + "-01-01"  # year only, or the 1 January stand-in
    elif kind == "document_ocr_only":
        alias = _person(rng, rare=rare)
        t = Person(alias.surname, alias.given, alias.dob, "")
        positions = [i for i, c in enumerate(e.document) if c in OCR_LETTERS and i > 1]
        i = rng.choice(positions)
        t.document = e.document[:i] + OCR_LETTERS[e.document[i]] + e.document[i + 1 :]
    return t


def _display(p: Person) -> Person:
    """The entry as a list keeper writes it: diacritics and apostrophes where the name has them."""
    sub = lambda text: " ".join(DIACRITICS.get(w, w) for w in text.split())  # noqa: E731
    return Person(sub(p.surname), sub(p.given), p.dob, p.document)


def _other_dob(rng: random.Random, dob: str) -> str:
    while True:
        other = _dob(rng)
        if abs(int(other[:4]) - int(dob[:4])) >= 2:
            return other


def generate(
    seed: int = 11,
    per_variant: int = 100,
    background: int = 1000,
    decoys: int = 300,
    innocents: int = 20_000,
    rare: float = 0.0,
) -> QualitySet:
    """The quality set: per_variant travellers of each variant type (each with its own entry), background
    entries nobody travels as, decoys of each decoy type, and innocent travellers."""
    rng = random.Random(seed)
    entries: list[delivery_pb2.WatchlistEntry] = []
    rows: list[tuple[Person, str, str | None]] = []

    def add_entry(p: Person) -> str:
        entry_id = f"Q-{len(entries):06d}"
        shown = _display(p)
        y, m, d = (int(x) for x in (p.dob.split("-") + ["0", "0"])[:3])
        entries.append(
            delivery_pb2.WatchlistEntry(
                entry_id=entry_id,
                surname=shown.surname,
                given_names=shown.given,
                date_of_birth=manifest_pb2.PartialDate(year=y, month=m, day=d),
                document_number=p.document,
                category="document_fraud",
            )
        )
        return entry_id

    for kind in VARIANT_TYPES:
        for _ in range(per_variant):
            e = _entry_for(kind, rng, rare)
            rows.append((_variant(kind, e, rng, rare), kind, add_entry(e)))
    for _ in range(background):
        add_entry(_person(rng, rare=rare))
    targets = [e for e in entries]
    for _ in range(decoys):
        e = rng.choice(targets)
        same = Person(e.surname, e.given_names, _other_dob(rng, f"{e.date_of_birth.year:04d}"), _document(rng))
        rows.append((same, "decoy_same_name", None))
        e = rng.choice(targets)
        given = e.given_names.split()
        given[0] = rng.choice(ORIGINS[rng.randrange(4)][0]) if rng.random() < 0.5 else _edit(rng, given[0])
        similar = Person(e.surname, " ".join(given), _other_dob(rng, f"{e.date_of_birth.year:04d}"), _document(rng))
        rows.append((similar, "decoy_similar_name", None))
    for _ in range(innocents):
        p = _person(rng, rare=rare)
        if rng.random() < 0.02:
            p.dob = p.dob[:4]  # some carriers send the year only
        rows.append((p, "innocent", None))

    travellers = pl.DataFrame(
        {
            "m": [0] * len(rows),
            "t": list(range(len(rows))),
            "surname_key": [p.surname for p, _, _ in rows],
            "given_key": [p.given for p, _, _ in rows],
            "dob": [p.dob for p, _, _ in rows],
            "documents": [[p.document] if p.document else [] for p, _, _ in rows],
            "kind": [k for _, k, _ in rows],
            "truth": [t for _, _, t in rows],
        },
        schema_overrides={"documents": pl.List(pl.String), "truth": pl.String},
    ).with_columns(name_key(pl.col("surname_key")), name_key(pl.col("given_key")))
    return QualitySet(entries, travellers)


@dataclass
class QualityReport:
    recall: dict[str, float]
    counts: dict[str, int]
    true_positives: int
    false_positives: int
    false_positives_by_kind: dict[str, int]
    innocents: int
    innocents_alerted: int
    threshold: float
    seconds: float
    entries: int
    travellers: int
    scores: dict[str, list[float]] = field(default_factory=dict)
    # True matches whose name was down-weighted as common (found all the same), per variant type.
    common_by_kind: dict[str, int] = field(default_factory=dict)
    # Alerted innocent travellers by the date-of-birth relation of their best match (matching.DOB_ADJUSTMENT
    # keys, "document" for a document match), and how many of those matches were down-weighted as common.
    innocent_alerts_by_dob: dict[str, int] = field(default_factory=dict)
    innocent_alerts_common: int = 0
    rare: float = 0.0

    @property
    def overall_recall(self) -> float:
        total = sum(self.counts[k] for k in VARIANT_TYPES if k in self.counts)
        found = sum(self.recall[k] * self.counts[k] for k in VARIANT_TYPES if k in self.counts)
        return found / total if total else 1.0

    @property
    def precision(self) -> float:
        alerts = self.true_positives + self.false_positives
        return self.true_positives / alerts if alerts else 1.0

    @property
    def false_alerts_per_10k(self) -> float:
        return 10_000 * self.innocents_alerted / self.innocents if self.innocents else 0.0

    def missed(self, kind: str) -> int:
        return round(self.counts.get(kind, 0) * (1.0 - self.recall.get(kind, 1.0)))


def store_of(quality: QualitySet) -> WatchlistStore:
    store = WatchlistStore()
    store.apply(delivery_pb2.Watchlist(owner="FJI", entries=quality.entries))
    return store


_DOB_KEYS = {text: key for key, text in DOB_TEXT.items()}


def _dob_relation(explanation: str) -> str:
    """The date-of-birth relation an explanation states (its second part), "document" for a document match."""
    parts = explanation.split("; ")
    if any(p.startswith("document number equal") for p in parts):
        return "document"
    return _DOB_KEYS.get(parts[1], "other") if len(parts) > 1 else "other"


def evaluate(
    quality: QualitySet, threshold: float = MATCH_THRESHOLD, store: WatchlistStore | None = None, rare: float = 0.0
) -> QualityReport:
    """Screen the set's travellers against its entries and count what was found and what was not (rare: the
    share of tail names the set was generated with, for the report's header)."""
    store = store or store_of(quality)
    started = time.perf_counter()
    matches = store.matches(quality.travellers, None, threshold=threshold)
    seconds = time.perf_counter() - started
    labelled = matches.join(quality.travellers.select("t", "kind", "truth"), on="t").with_columns(
        common=pl.col("explanation").str.contains("common name", literal=True)
    )
    correct = labelled.filter(pl.col("entry_id") == pl.col("truth"))
    wrong = labelled.filter((pl.col("truth").is_null()) | (pl.col("entry_id") != pl.col("truth")))
    counts = Counter(quality.travellers["kind"].to_list())
    found = Counter(correct["kind"].to_list())
    innocents = quality.travellers.filter(pl.col("kind") == "innocent")
    alerts = wrong.filter(pl.col("kind") == "innocent").sort("score", descending=True).unique("t", keep="first")
    return QualityReport(
        recall={k: found[k] / counts[k] for k in VARIANT_TYPES if counts[k]},
        counts=dict(counts),
        true_positives=correct.height,
        false_positives=wrong.height,
        false_positives_by_kind=dict(Counter(wrong["kind"].to_list())),
        innocents=innocents.height,
        innocents_alerted=alerts.height,
        threshold=threshold,
        seconds=seconds,
        entries=len(quality.entries),
        travellers=quality.travellers.height,
        common_by_kind=dict(Counter(correct.filter("common")["kind"].to_list())),
        innocent_alerts_by_dob=dict(Counter(_dob_relation(e) for e in alerts["explanation"].to_list())),
        innocent_alerts_common=alerts.filter("common").height,
        rare=rare,
    )


def format_report(report: QualityReport) -> str:
    names = (
        "every name part from the pools of common names"
        if not report.rare
        else f"{report.rare:.0%} of name parts from the long tail of less common names"
    )
    lines = [
        f"watchlist entries {report.entries:,}, travellers screened {report.travellers:,} "
        f"in {report.seconds:.2f} s, threshold {report.threshold:.2f}; {names}",
        "",
        "missed: travellers not matched to their entry; wrong: matches to another entry (false positives);",
        "common: true matches found although their name was down-weighted as common",
        "",
        f"{'variant type':<24}{'travellers':>11}{'recall':>9}{'missed':>8}{'wrong':>7}{'common':>8}",
    ]
    wrong = report.false_positives_by_kind
    for kind in VARIANT_TYPES:
        if kind in report.recall:
            lines.append(
                f"{kind:<24}{report.counts[kind]:>11}{report.recall[kind]:>9.3f}{report.missed(kind):>8}"
                f"{wrong.get(kind, 0):>7}{report.common_by_kind.get(kind, 0):>8}"
            )
    total = sum(report.counts.get(k, 0) for k in VARIANT_TYPES)
    lines += [
        f"{'all variants':<24}{total:>11}{report.overall_recall:>9.3f}"
        f"{sum(report.missed(k) for k in VARIANT_TYPES):>8}{sum(wrong.get(k, 0) for k in VARIANT_TYPES):>7}"
        f"{sum(report.common_by_kind.get(k, 0) for k in VARIANT_TYPES):>8}",
        "",
        f"precision {report.precision:.4f} ({report.true_positives} true, {report.false_positives} false matches; "
        f"false by kind: {report.false_positives_by_kind or 'none'})",
        *(f"{k:<24}{report.counts.get(k, 0):>11} travellers{wrong.get(k, 0):>6} false alerts" for k in DECOY_TYPES),
        f"false alerts per 10,000 innocent travellers: {report.false_alerts_per_10k:.2f} "
        f"({report.innocents_alerted} of {report.innocents:,})",
    ]
    if report.innocent_alerts_by_dob:
        by_dob = ", ".join(
            f"{k} {v}" for k, v in sorted(report.innocent_alerts_by_dob.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        lines.append(
            f"alerted innocents by date-of-birth evidence: {by_dob}; "
            f"name down-weighted as common in {report.innocent_alerts_common}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.profiler.variants", description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="generate the set, screen it, print the table")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--seeds",
        type=lambda text: [int(x) for x in text.split(",")],
        help="comma-separated seeds: the table for the first, then one summary line per seed and their mean "
        "(how much the figures move between generated sets)",
    )
    parser.add_argument("--entries-per-variant", type=int, default=400, help="travellers (and entries) per type")
    parser.add_argument("--background", type=int, default=10_000, help="entries nobody travels as")
    parser.add_argument("--decoys", type=int, default=2_000, help="decoys of each decoy type")
    parser.add_argument("--innocents", type=int, default=100_000)
    parser.add_argument(
        "--rare-names",
        type=float,
        default=0.0,
        help="share of name parts drawn from a long tail of less common names (default 0: common pools only)",
    )
    parser.add_argument("--threshold", type=float, default=MATCH_THRESHOLD)
    parser.add_argument("--sweep", action="store_true", help="also print recall/precision at other thresholds")
    args = parser.parse_args(argv)
    if not args.report:
        parser.print_help()
        return
    seeds = args.seeds or [args.seed]

    def quality_set(seed: int) -> QualitySet:
        return generate(
            seed, args.entries_per_variant, args.background, args.decoys, args.innocents, rare=args.rare_names
        )

    quality = quality_set(seeds[0])
    store = store_of(quality)
    first = evaluate(quality, args.threshold, store, rare=args.rare_names)
    print(format_report(first))
    if len(seeds) > 1:
        print(f"\nacross seeds (threshold {args.threshold:.2f})")
        print("seed  recall  min type recall (type)           precision  false alerts/10k")
        reports = [first] + [evaluate(quality_set(seed), args.threshold, rare=args.rare_names) for seed in seeds[1:]]
        for seed, r in zip(seeds, reports, strict=True):
            worst = min(r.recall, key=r.recall.get)
            print(
                f"{seed:>4}{r.overall_recall:>8.3f}{r.recall[worst]:>17.3f} {f'({worst})':<22}{r.precision:>10.4f}"
                f"{r.false_alerts_per_10k:>18.2f}"
            )
        n = len(reports)
        print(
            f"mean{sum(r.overall_recall for r in reports) / n:>8.3f}"
            f"{min(min(r.recall.values()) for r in reports):>17.3f} {'(lowest of any seed)':<22}"
            f"{sum(r.precision for r in reports) / n:>10.4f}{sum(r.false_alerts_per_10k for r in reports) / n:>18.2f}"
        )
    if args.sweep:
        print("\nthreshold  recall  min type recall  precision  false alerts/10k")
        for threshold in (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.95):
            r = evaluate(quality, threshold, store)
            worst = min(r.recall.values(), default=1.0)
            print(
                f"{threshold:>9.2f}{r.overall_recall:>8.3f}{worst:>17.3f}{r.precision:>11.4f}"
                f"{r.false_alerts_per_10k:>18.2f}"
            )


if __name__ == "__main__":
    main()
