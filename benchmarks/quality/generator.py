"""A generated, seeded quality set for watchlist screening (measured by benchmarks.quality.report).

Synthetic people only: names are drawn from pools of common Pacific, Asian, European and Arabic-transliterated
names and combined at random, dates of birth and document numbers are random. The set has:

* watchlist entries (one list, regional scope): the targets of the variants, plus background entries;
* variant travellers, each a true variant of one entry, by VARIANT_TYPES: the ORIGINAL_TYPES (clerical and
  transliteration variants, date-of-birth slips, OCR-confused documents) and the ADDED_TYPES, misses that
  matter at a Pacific border (single names, dates of birth a few days or a month off or known to the year
  only, typos in 2-3 letter name parts, a letter moved across a space, "SURNAME, GIVEN" in one field);
* decoys: the same name as an entry with another date of birth and document (another person of that name),
  and similar names (same surname, another given name; or one edit away) with another date of birth;
* innocent travellers: random people of the four origins; by default half of them are drawn instead from the
  region's own traffic (Indo-Fijian, iTaukei Fijian, Tongan, Samoan, Chinese, Filipino and Korean travellers
  with the region's most common names: REGIONAL_SHARE) and about 1 % carry a single name (SINGLE_NAME_SHARE,
  a third of them with a placeholder such as FNU in the other field).

The original types, background entries, decoys and the innocents not replaced by regional ones are drawn
exactly as before the added types existed (one stream of the seed); each added type and the regional
replacement draw from streams of their own, so the added parts never shift the original draws. Half of the
variant travellers of every type carry their entry's document number, as they always did.

The pools hold about 40 names per origin and field (10-40 per regional population), so every name in the
default set is a common one: one innocent traveller in twelve shares an entry's exact full name (one in five
of those with one given name and one surname; without the regional travellers (regional=0) one in nine and
one in two), and most of the remaining false alerts are innocents whose evidence is the same as a true
variant's (same full name and birth year, with a year-only date of birth). generate(rare=...) draws that share of
name parts from a long tail of less common names instead (syllable compositions per origin), as real name
distributions have; the default (0) keeps every name common, a worst case for common names.

The report (`.venv/bin/python -m benchmarks.quality --report`) measures several sets of this generator beside
public real-world names: recall per class and variant type at each band, precision, false alerts per 10,000
innocent travellers, and a naive matcher's figures.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from services.profiler.frames import name_key
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

# Names of one part only (ICAO 9303: the whole name in the primary identifier, no secondary identifier):
# Afghan and Pashtun names, Javanese names, and Pacific names recorded alone (Kiribati, Tonga, Fiji).
SINGLE_NAMES = _words(
    "HIDAYATULLAH SHAMSUDDIN NOORULLAH ZABIULLAH NAJIBULLAH RAHMATULLAH SAIFULLAH KHAIRULLAH AMANULLAH "
    "ASADULLAH HABIBULLAH INAYATULLAH SAMIULLAH NASRUDDIN ZAHIRUDDIN KAMALUDDIN SHAFIQULLAH EHSANULLAH "
    "SUPARMAN SUGIANTO WAHYUDI SUPRIYADI SUMARNI SUTRISNO SURYADI MULYADI HARYANTO SUYANTO SUPRAPTO "
    "TEBURORO ANOTE TANETI SIONE TEVITA SEMISI JOSAIA ISIKELI SAKIUSA VILIAMI INOKE"
)
# Two-part names that are also written run together as one name (ABDUL RAHMAN -> ABDULRAHMAN): given, surname.
JOINABLE_NAMES = tuple(
    tuple(pair.split("+"))
    for pair in _words(
        "ABDUL+RAHMAN ABDUL+KARIM ABDUL+RAHIM ABDUL+AZIZ ABDUL+HAMID ABDUL+MALIK ABDUL+WAHAB ABDUL+QADIR "
        "NOOR+MOHAMMAD GUL+AHMAD SHAH+MAHMOOD NUR+HIDAYAT SITI+AMINAH MUHAMMAD+YUSUF"
    )
)
# What carriers and list keepers put in the empty field of a single name (first / last name unknown).
PLACEHOLDERS = ("FNU", "LNU", "XXX")

# Names with parts of 2-3 letters, for typos in short parts (_short_named): Korean, with the given name in two
# syllables as North Korean documents write it; Chinese; Vietnamese with the middle names VAN / THI; Arabic ALI
# (ARABIC_GIVEN); Pacific. Given names of two parts are drawn as a whole.
KOREAN_SHORT_SURNAMES = _words("KIM PAK RI JO SON KO HAN")
KOREAN_SHORT_GIVEN = (
    "SOK CHOL",
    "CHOL SU",
    "YONG HO",
    "KWANG IL",
    "MYONG CHOL",
    "YONG NAM",
    "SONG HO",
    "OK SUN",
    "SUN HUI",
    "MI RAN",
    "HYE SUN",
    "JIN HO",
    "SANG HO",
)
CHINESE_SHORT_SURNAMES = _words("LI WU HU MA XU")
CHINESE_SHORT_GIVEN = _words("WEI JUN LEI MING HUI YAN JIE TAO BIN LIN XIAOMING JIANGUO HAIYAN")
VIETNAMESE_SHORT_SURNAMES = _words("LE VU")
VIETNAMESE_SHORT_GIVEN = tuple(
    f"{middle} {name}"
    for middle, names in (("VAN", "HUNG DUC MINH TUAN NAM"), ("THI", "MAI LAN HOA HUONG ANH"))
    for name in names.split()
)
PACIFIC_SHORT_SURNAMES = _words("VEA")  # Tongan
PACIFIC_SHORT_GIVEN = _words("ANA SIA TUI")  # Tongan, Samoan, Fijian

# The region's own traffic, for innocent travellers only: the most common names of each population.
INDO_FIJIAN_GIVEN = _words(
    "RAJESH SUNIL ANIL VIJAY SANJAY RAKESH RAVINESH SHALENDRA ASHWIN PRAVEEN KAMLESH NILESH RONEEL SHIVNEEL "
    "ROHIT DINESH MUKESH SURESH PRAKASH ASHOK SUNITA ANJALI SHALINI PRIYA KAJAL REENA SHIVANI NEELAM SANGEETA "
    "KAMLA SAVITA SHANTI SHABNAM NAZIA SHAMEEM FAROOK IMRAN SALIM RIYAZ"
)
INDO_FIJIAN_SURNAMES = _words(
    "PRASAD SINGH KUMAR CHAND LAL RAM DEVI NARAYAN SHARMA REDDY NAIDU KHAN ALI NAND PILLAY GOUNDAR RAJ"
)
TONGAN_GIVEN = _words(
    "SIONE VILIAMI SEMISI TEVITA SIOSAIA PAULA SITANI SIAOSI MOSESE SIMIONE TANIELA MELE ANA SALOTE LOSANA "
    "LUPE ILAISAANE KALOLAINE SEINI LESIELI VIKA"
)
TONGAN_SURNAMES = _words(
    "TUPOU TAUFA FIFITA LATU MAFI FONUA HAVILI VAIPULU KATOA MOALA VEA PALU TAUMOEPEAU HALAPUA HELU"
)
SAMOAN_GIVEN = _words(
    "IOANE FILIPO TAVITA SEFO PITA LAFAELE IOSEFA SAMUELU TOMASI PENI MALIA SINA TEUILA SALOME LOSA ANA FETU"
)
SAMOAN_SURNAMES = _words("TUALA LEOTA FUIMAONO SAPOLU LEAVASA TAUILIILI FAALOGO TUILAEPA SOLOMONA LEMALU AIONO")
FIJIAN_GIVEN = _words(
    "JONE EPELI JOSAIA MERE LITIA SAMISONI ASENACA INOKE NETANI SAKIUSA ISIKELI SEREANA ILIESA VILIAME "
    "APISALOME LUSIANA MAKERETA SALANIETA TIMOCI WAISALE"
)
FIJIAN_SURNAMES = _words(
    "NAIVALU RABUKA WAQA KOROI RAVUVU TUIVAGA QALO VUNIWAI NAWAQA TABUA SERU NAIKATINI TUINIVANUA BAINIMARAMA"
)
CHINESE_GIVEN = _words("WEI JUN MEI LING XIN HUI YAN JING YING HAO LEI FANG XIAOMING JIANGUO")
CHINESE_SURNAMES = _words("LI WANG ZHANG LIU CHEN YANG HUANG ZHAO WU ZHOU")
FILIPINO_GIVEN = _words("JOSE JUAN MARIA MARK JOHN PAUL MICHAEL ANGELO JOCELYN MARICEL ROMMEL JENNIFER CRISTINA")
FILIPINO_SURNAMES = _words("SANTOS REYES CRUZ BAUTISTA MENDOZA GARCIA")
KOREAN_GIVEN = _words("MINJUN SEOYEON JIHO JIWOO HYUNWOO JIHOON YOUNGHO SUNGMIN JIYEON EUNJI")
KOREAN_SURNAMES = _words("KIM LEE PARK CHOI JUNG")


@dataclass(frozen=True)
class Population:
    givens: list[str]
    surnames: list[str]
    tail: int  # the ORIGINS index whose long tail of names stands in for this population's (rare > 0)
    given_counts: tuple[int, ...]  # how many given names, drawn uniformly from these
    weight: float  # share of the regional travellers


REGIONAL_POPULATIONS = (
    Population(INDO_FIJIAN_GIVEN, INDO_FIJIAN_SURNAMES, 1, (1, 1, 2), 30),
    Population(FIJIAN_GIVEN, FIJIAN_SURNAMES, 0, (1, 2, 2, 3), 22),
    Population(TONGAN_GIVEN, TONGAN_SURNAMES, 0, (1, 2, 2, 3), 15),
    Population(SAMOAN_GIVEN, SAMOAN_SURNAMES, 0, (1, 2, 2, 3), 13),
    Population(CHINESE_GIVEN, CHINESE_SURNAMES, 1, (1,), 8),
    Population(FILIPINO_GIVEN, FILIPINO_SURNAMES, 1, (1, 2), 7),
    Population(KOREAN_GIVEN, KOREAN_SURNAMES, 1, (1,), 5),
)
REGIONAL_SHARE = 0.5  # of the innocent travellers, drawn from REGIONAL_POPULATIONS instead of ORIGINS
SINGLE_NAME_SHARE = 0.01  # of the innocent travellers, a single name (a third with a placeholder)

ORIGINAL_TYPES = (
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
# Drawn after the original types, each from a stream of its own (see generate).
ADDED_TYPES = (
    "single_name",
    "dob_day_off",
    "dob_month_off",
    "dob_approx_year",
    "short_token_typo",
    "boundary_shift",
    "reversed_comma",
)
VARIANT_TYPES = ORIGINAL_TYPES + ADDED_TYPES
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


def _regional_person(rng: random.Random, rare: float = 0.0) -> Person:
    """A traveller of the region's own traffic (REGIONAL_POPULATIONS, by weight); rare as for _person, with
    the tail of the nearest origin."""
    population = rng.choices(REGIONAL_POPULATIONS, weights=[p.weight for p in REGIONAL_POPULATIONS])[0]
    count = rng.choice(population.given_counts)
    names: dict[str, None] = {}
    while len(names) < count:
        names[_name(rng, population.givens, population.tail, "given", rare)] = None
    surname = _name(rng, population.surnames, population.tail, "surname", rare)
    return Person(surname, " ".join(names), _dob(rng), _document(rng))


def _single_named(rng: random.Random) -> Person:
    """A person with a single name (surname the name, given names empty or, a third of the time, a placeholder)."""
    given = rng.choice(PLACEHOLDERS) if rng.random() < 1 / 3 else ""
    return Person(rng.choice(SINGLE_NAMES), given, _dob(rng), _document(rng))


def _short_named(rng: random.Random) -> Person:
    """A person with at least one name part of 2-3 letters (Korean, Chinese, Vietnamese, Arabic, Pacific)."""
    p = Person("", "", _dob(rng), _document(rng))
    group = rng.randrange(5)
    if group == 0:
        p.surname, p.given = rng.choice(KOREAN_SHORT_SURNAMES), rng.choice(KOREAN_SHORT_GIVEN)
    elif group == 1:
        p.surname, p.given = rng.choice(CHINESE_SHORT_SURNAMES), rng.choice(CHINESE_SHORT_GIVEN)
    elif group == 2:
        p.surname, p.given = rng.choice(VIETNAMESE_SHORT_SURNAMES), rng.choice(VIETNAMESE_SHORT_GIVEN)
    elif group == 3:  # ALI as the given name or as the surname
        if rng.random() < 0.5:
            p.surname, p.given = rng.choice(ARABIC_SURNAMES), "ALI"
        else:
            p.surname, p.given = "ALI", rng.choice([g for g in ARABIC_GIVEN if g != "ALI"])
    elif rng.random() < 0.5:
        p.surname, p.given = rng.choice(PACIFIC_SHORT_SURNAMES), " ".join(rng.sample(PACIFIC_GIVEN, rng.choice((1, 2))))
    else:
        p.surname, p.given = rng.choice(PACIFIC_SURNAMES), rng.choice(PACIFIC_SHORT_GIVEN)
    return p


def _short_typo(rng: random.Random, word: str) -> str:
    """word (2-3 letters) with two adjacent letters transposed, a letter doubled, or (3 letters) one dropped."""
    swaps = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    ops = ["double"] + (["swap"] if swaps else []) + (["drop"] if len(word) >= 3 else [])
    op = rng.choice(ops)
    if op == "swap":
        i = rng.choice(swaps)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = rng.randrange(len(word))
    if op == "double":
        return word[: i + 1] + word[i:]
    return word[:i] + word[i + 1 :]


def _shift(rng: random.Random, left: str, right: str) -> tuple[str, str]:
    """One letter moved across the space between two parts: the last of left to the front of right
    (LAURENT NKUNDA -> LAUREN TNKUNDA) or the first of right to the end of left; the part that gives a letter
    keeps at least two."""
    moves = (["right"] if len(left) >= 3 else []) + (["left"] if len(right) >= 3 else [])
    if rng.choice(moves) == "right":
        return left[:-1], left[-1] + right
    return left + right[0], right[1:]


def _dob_swapped(dob: str) -> str:
    y, m, d = dob.split("-")
    return f"{y}-{d}-{m}"


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
    if kind == "single_name":
        if rng.random() < 1 / 3:  # a two-part name that the traveller runs together
            given, surname = rng.choice(JOINABLE_NAMES)
            return Person(surname, given, _dob(rng), _document(rng))
        return Person(rng.choice(SINGLE_NAMES), "", _dob(rng), _document(rng))
    if kind == "short_token_typo":
        return _short_named(rng)
    if kind == "boundary_shift":
        while True:  # some part beside a boundary must be able to give a letter (LI WEI has none)
            p = _person(rng, rare=rare)
            if any(len(t) >= 3 for t in f"{p.surname} {p.given}".split()):
                return p
    if kind == "reversed_comma":  # each of the second differences possible: a middle name, a long part, a swap
        p = _person(rng, given_names=rng.choice((2, 3)), rare=rare)
        while not any(len(t) >= 4 for t in f"{p.surname} {p.given}".split()):
            p = _person(rng, given_names=rng.choice((2, 3)), rare=rare)
        p.dob = _dob(rng, swappable=True)
        return p
    p = _person(rng, rare=rare)
    if kind == "dob_approx_year":
        p.dob = p.dob[:4]  # "approximately 1965"
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
        t.dob = _dob_swapped(e.dob)
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
    elif kind == "single_name":
        if e.given:  # ABDUL / RAHMAN on the list, ABDULRAHMAN on the document
            t.surname, t.given = e.given.replace(" ", "") + e.surname.replace(" ", ""), ""
        elif rng.random() < 0.5:
            t.given = rng.choice(PLACEHOLDERS)
    elif kind == "dob_day_off":
        y, m, d = (int(x) for x in e.dob.split("-"))
        days = [d + k for k in (*range(-7, 0), *range(1, 8)) if 1 <= d + k <= 28 and (m, d + k) != (1, 1)]
        t.dob = f"{y:04d}-{m:02d}-{rng.choice(days):02d}"
    elif kind == "dob_month_off":
        y, m, d = (int(x) for x in e.dob.split("-"))
        months = [m + k for k in (-1, 1) if 1 <= m + k <= 12 and (m + k, d) != (1, 1)]
        t.dob = f"{y:04d}-{rng.choice(months):02d}-{d:02d}"
    elif kind == "dob_approx_year":
        year = int(e.dob[:4]) + rng.choice((-1, 1)) * rng.randint(1, 5)
        t.dob = f"{year:04d}{_dob(rng)[4:]}"
    elif kind == "short_token_typo":
        fields = [e.surname.split(), e.given.split()]
        short = [(f, i) for f, parts in enumerate(fields) for i, w in enumerate(parts) if 2 <= len(w) <= 3]
        f, i = rng.choice(short)
        fields[f][i] = _short_typo(rng, fields[f][i])
        t.surname, t.given = (" ".join(parts) for parts in fields)
    elif kind == "boundary_shift":
        fields = [e.surname.split(), e.given.split()]
        inside = [
            (f, i)
            for f, parts in enumerate(fields)
            for i in range(len(parts) - 1)
            if max(map(len, parts[i : i + 2])) >= 3
        ]
        across = max(len(fields[0][-1]), len(fields[1][0])) >= 3
        if inside and (not across or rng.random() < 2 / 3):
            f, i = rng.choice(inside)
            fields[f][i], fields[f][i + 1] = _shift(rng, fields[f][i], fields[f][i + 1])
            t.surname, t.given = (" ".join(parts) for parts in fields)
        else:  # the whole name in one field, the letter moved between surname and given names
            parts, i = fields[0] + fields[1], len(fields[0]) - 1
            parts[i], parts[i + 1] = _shift(rng, parts[i], parts[i + 1])
            t.surname, t.given = " ".join(parts), ""
    elif kind == "reversed_comma":
        surname, given = e.surname, e.given
        differences = ["middle"] if len(given.split()) > 1 else []
        differences += ["typo"] if any(len(w) >= 4 for w in f"{surname} {given}".split()) else []
        y, m, d = e.dob.split("-") if e.dob.count("-") == 2 else ("", "", "")
        differences += ["dob_swap"] if d and m != d and int(d) <= 12 else []
        difference = rng.choice(differences) if differences else None
        if difference == "middle":
            parts = given.split()
            given = " ".join(parts[:1] + parts[2:])
        elif difference == "typo":
            words = [surname.split(), given.split()]
            f, i = rng.choice([(f, i) for f, ws in enumerate(words) for i, w in enumerate(ws) if len(w) >= 4])
            words[f][i] = _edit(rng, words[f][i])
            surname, given = (" ".join(ws) for ws in words)
        elif difference == "dob_swap":
            t.dob = _dob_swapped(e.dob)
        t.surname, t.given = f"{surname}, {given}", ""
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
    types: Sequence[str] = VARIANT_TYPES,
    regional: float = REGIONAL_SHARE,
    single_names: float = SINGLE_NAME_SHARE,
) -> QualitySet:
    """The quality set: per_variant travellers of each variant type of types (each with its own entry),
    background entries nobody travels as, decoys of each decoy type, and innocent travellers (regional: the
    share of them drawn from the region's own traffic; single_names: the share with a single name).

    The original types, the background, the decoys and the innocents draw from one stream of the seed, as
    they did before the added types existed; each added type and the regional innocents from streams of their
    own, so generate(seed, ..., types=ORIGINAL_TYPES, regional=0, single_names=0) is the set as it was.
    Entries of the added types come after the background entries; their travellers after the original types'
    and before the decoys."""
    unknown = set(types) - set(VARIANT_TYPES)
    if unknown:
        raise ValueError(f"unknown variant types: {sorted(unknown)}")
    rng = random.Random(seed)
    entries: list[delivery_pb2.WatchlistEntry] = []
    rows: list[tuple[Person, str, str | None]] = []
    added_rows: list[tuple[Person, str, str | None]] = []

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

    for kind in ORIGINAL_TYPES:
        if kind in types:
            for _ in range(per_variant):
                e = _entry_for(kind, rng, rare)
                rows.append((_variant(kind, e, rng, rare), kind, add_entry(e)))
    for _ in range(background):
        add_entry(_person(rng, rare=rare))
    targets = [e for e in entries]
    for kind in ADDED_TYPES:
        if kind in types:
            stream = random.Random(f"{seed}-{kind}")
            for _ in range(per_variant):
                e = _entry_for(kind, stream, rare)
                added_rows.append((_variant(kind, e, stream, rare), kind, add_entry(e)))
    rows += added_rows
    for _ in range(decoys):
        e = rng.choice(targets)
        same = Person(e.surname, e.given_names, _other_dob(rng, f"{e.date_of_birth.year:04d}"), _document(rng))
        rows.append((same, "decoy_same_name", None))
        e = rng.choice(targets)
        given = e.given_names.split()
        given[0] = rng.choice(ORIGINS[rng.randrange(4)][0]) if rng.random() < 0.5 else _edit(rng, given[0])
        similar = Person(e.surname, " ".join(given), _other_dob(rng, f"{e.date_of_birth.year:04d}"), _document(rng))
        rows.append((similar, "decoy_similar_name", None))
    local = random.Random(f"{seed}-innocents")
    for _ in range(innocents):
        p = _person(rng, rare=rare)
        if rng.random() < 0.02:
            p.dob = p.dob[:4]  # some carriers send the year only
        draw = local.random()
        if draw < single_names:
            p = _single_named(local)
        elif draw < single_names + regional:
            p = _regional_person(local, rare)
            if local.random() < 0.02:
                p.dob = p.dob[:4]
        rows.append((p, "innocent", None))

    travellers = pl.DataFrame(
        {
            "manifest_index": [0] * len(rows),
            "traveller_index": list(range(len(rows))),
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
