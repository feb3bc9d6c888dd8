"""Names: transliteration folds, the token alignment of two names and its explanation (matching, step "name")."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import polars as pl
from rapidfuzz.distance import OSA

from services.profiler.matching.rarity import INITIAL_DECADES, _decades

# -- folds and canonical forms ------------------------------------------------------------------------------

# Letters and digraphs that transliterations of one name disagree on (MOHAMMED, MUHAMMAD; YUSUF, YOUSEF;
# MUELLER, MULLER; KHALID, HALID). Applied in this order: digraphs, then an H after any letter is dropped,
# vowel runs become one A, doubled letters one letter. Coarse on purpose: it feeds the index (recall) and
# lifts a token similarity half-way, never decides a match alone.
_FOLD_LETTERS = {
    "PH": "F", "CK": "K", "KH": "K", "GH": "G", "DH": "D", "TH": "T",
    "Q": "K", "Z": "S", "W": "V", "C": "K", "X": "KS", "Y": "I",
}  # fmt: skip
_DOUBLES = [c + c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def fold_expr(token: pl.Expr) -> pl.Expr:
    """Transliteration fold of a column of single name tokens (name_key form): MUHAMMAD -> MAMAD."""
    return (
        token.str.replace_many(_FOLD_LETTERS, leftmost=True)
        .str.replace_all(r"(.)H", "${1}")
        .str.replace_all(r"[AEIOU]+", "A")
        .str.replace_many(_DOUBLES, [d[0] for d in _DOUBLES])
    )


def fold_tokens(tokens: Iterable[str]) -> dict[str, str]:
    """fold_expr for a few tokens at once, as a dict (the same expression: one definition)."""
    distinct = sorted(set(tokens))
    folded = pl.Series("t", distinct, dtype=pl.String).to_frame().select(fold_expr(pl.col("t")))["t"]
    return dict(zip(distinct, folded.to_list(), strict=True))


# -- alignment ---------------------------------------------------------------------------------------------

# MRZ name field lengths (ICAO 9303: TD1 30, TD2 31, TD3 39 characters, "SURNAME<<GIVEN<NAMES"). A name
# whose MRZ form has exactly one of these lengths may have been cut: its last token matches as a prefix.
MRZ_NAME_LENGTHS = (30, 31, 39)
_MIN_TOKEN_SIMILARITY = 0.6
_EXTRA_PART_COST = 0.35  # share of _PART_DECADES charged for an unmatched part when only one side has extras
_TRUNCATED_PART_COST = 0.1  # an entry's names beyond an MRZ cut are expected to be missing
_SWAP_FACTOR = 0.97
# What an unmatched name part costs, in the decades that agreeing parts weigh (name_rarity), before the
# _EXTRA_PART_COST share: like a part that one person in a hundred has. A part's absence says as much
# whether the part is rare or common, so the cost does not depend on which part it is.
_PART_DECADES = 2.0
# The ICAO two-letter forms (frames.name_key: Ü -> UE, Ø -> OE, Å -> AA) against the plain letter that other
# keyboards type: one name written two documented ways, nearly as good as equal.
_ICAO_PLAIN = re.compile(r"(?<=[AOU])E|(?<=A)A")
_ICAO_PLAIN_SIMILARITY = 0.95
# Folds agree for any two names with the same consonants (MELE, MALIA): they lift a similarity half-way to 1
# only when the spellings already share at least this much (MOHAMMED ~ MUHAMMAD 0.75, YUSUF ~ YOUSSEF 0.57),
# and never for parts of three letters or fewer, where a vowel is a third of the name (LI, LU; SON, SUN).
_MIN_FOLD_LIFT = 0.5


def mrz_truncated(surname: str, given: str) -> bool:
    """Whether a name (name_key form) fills an MRZ name field exactly, so its last part may be cut."""
    length = len(surname) + (2 + len(given) if given else 0)
    return length in MRZ_NAME_LENGTHS


class _Token(NamedTuple):
    text: str
    fold: str
    field: str  # "surname" or "given"
    plain: str  # text without the second letter of the ICAO two-letter forms (_ICAO_PLAIN)
    joined: bool = False
    parts: tuple[str, ...] = ()  # a joined part: the parts it joins (its rarity is theirs together)


def _token_decades(token: _Token, rarity: dict[str, float] | None) -> float:
    """Rarity of a part (name_rarity); a part joined from several weighs what they weigh together."""
    if token.parts:
        return sum(_decades(part, rarity) for part in token.parts)
    return _decades(token.text, rarity)


def _tokens(surname: str, given: str, folds: dict[str, str]) -> list[_Token]:
    return [_Token(t, folds[t], "surname", _ICAO_PLAIN.sub("", t)) for t in surname.split()] + [
        _Token(t, folds[t], "given", _ICAO_PLAIN.sub("", t)) for t in given.split()
    ]


def _join_compounds(side: list[_Token], other: list[_Token], folds: dict[str, str]) -> list[_Token]:
    """Merge adjacent parts of one field that the other side writes as one word (JEAN PIERRE ~ JEANPIERRE;
    three parts too: PLAT ONO VICH ~ PLATONOVICH)."""
    texts = {t.text for t in other}
    if len(side) < 2 or all(t.text in texts for t in side):
        return side
    words = texts | {t.fold for t in other}
    out: list[_Token] = []
    i = 0
    while i < len(side):
        for width in (3, 2):
            run = side[i : i + width]
            # Never an initial (SAID H is not SAIDH, whose fold is SAID's), never across fields.
            if len(run) < width or any(len(t.text) < 2 or t.field != run[0].field for t in run):
                continue
            joined = "".join(t.text for t in run)
            if joined in words or folds.get(joined, "-") in words:
                token = _Token(joined, folds.get(joined, ""), run[0].field, _ICAO_PLAIN.sub("", joined), True)
                out.append(token._replace(parts=tuple(t.text for t in run)))
                i += width
                break
        else:
            out.append(side[i])
            i += 1
    return out


def _merge_boundaries(traveller: list[_Token], entry: list[_Token]) -> tuple[list[_Token], list[_Token]]:
    """Merge parts that are one name split differently on the two sides, in any field and either order
    (given names and surname run together either way): two parts on one side whose letters run together equal
    one part on the other (ABDULRAHMAN ~ ABDUL RAHMAN across fields: what _join_compounds leaves), or two parts
    on each side whose letters run together agree while the parts do not (LAUREN TNKUNDA ~ LAURENT NKUNDA: a
    letter moved across the space). Equal, or one edit apart over 8 letters or more. Only parts without an
    exact equal on the other side take part; the first pairing found is merged."""
    t_texts, e_texts = {t.text for t in traveller}, {e.text for e in entry}
    t_loose = [i for i, t in enumerate(traveller) if t.text not in e_texts and len(t.text) > 1]
    e_loose = [j for j, e in enumerate(entry) if e.text not in t_texts and len(e.text) > 1]
    if not t_loose or not e_loose or len(t_loose) + len(e_loose) < 3:
        return traveller, entry
    t_joined = [(traveller[i].text + traveller[k].text, i, k) for i in t_loose for k in t_loose if i != k]
    e_joined = [(entry[j].text + entry[m].text, j, m) for j in e_loose for m in e_loose if j != m]
    for t_text, i, k in t_joined:
        for e_text, j, m in e_joined:
            if _same_letters(t_text, e_text):
                return _merged(traveller, i, k, t_text), _merged(entry, j, m, e_text)
    for t_text, i, k in t_joined:
        for j in e_loose:
            if _same_letters(t_text, entry[j].text):
                return _merged(traveller, i, k, t_text), _merged(entry, j, j, entry[j].text)
    for e_text, j, m in e_joined:
        for i in t_loose:
            if _same_letters(traveller[i].text, e_text):
                return _merged(traveller, i, i, traveller[i].text), _merged(entry, j, m, e_text)
    return traveller, entry


def _same_letters(a: str, b: str) -> bool:
    return a == b or (len(a) >= 8 and abs(len(a) - len(b)) <= 1 and OSA.distance(a, b) <= 1)


def _merged(side: list[_Token], i: int, k: int, text: str) -> list[_Token]:
    """side with parts i and k replaced by one joined part (i == k: part i marked joined)."""
    parts = (side[i].parts or (side[i].text,)) + (() if k == i else side[k].parts or (side[k].text,))
    token = _Token(text, "", side[i].field, _ICAO_PLAIN.sub("", text), True, parts)
    return [token if n == i else t for n, t in enumerate(side) if n != k or k == i]


# Slips in short parts (three letters or fewer), which otherwise fail closed (no fuzzy match of LI and LU): one
# edit in a three-letter part is a third of it, yet a letter doubled or dropped (SON, SSON; ALI, AL) or two
# adjacent letters swapped (SOK, SKO) is what a keyboard does, not another name.
_SHORT_DOUBLED_SIMILARITY = 0.9
_SHORT_SWAPPED_SIMILARITY = 0.85
_DOUBLED = re.compile(r"(.)\1+")


def _token_similarity(t: _Token, e: _Token, prefix_ok: bool) -> tuple[float, str]:
    if t.text == e.text:
        return 1.0, "joined" if (t.joined or e.joined) else "exact"
    if len(t.text) == 1 or len(e.text) == 1:
        return (0.8, "initial") if t.text[0] == e.text[0] else (0.0, "")
    if prefix_ok and len(t.text) >= 2 and e.text.startswith(t.text):
        return 0.97, "truncated"
    if t.plain == e.plain and min(len(t.text), len(e.text)) >= 4:
        return _ICAO_PLAIN_SIMILARITY, "transliteration"  # MUELLER ~ MULLER, SOEREN ~ SOREN
    similarity = OSA.normalized_similarity(t.text, e.text)
    swapped = len(t.text) == len(e.text) >= 4 and sorted(t.text) == sorted(e.text)
    if swapped and OSA.distance(t.text, e.text) == 1:  # two adjacent letters swapped: half an edit (AFIZ ~ FAIZ)
        similarity = 1.0 - 0.5 / len(t.text)
    short = min(len(t.text), len(e.text)) <= 3
    if t.fold and t.fold == e.fold and similarity >= _MIN_FOLD_LIFT and not short:
        return 0.5 + 0.5 * similarity, "transliteration"
    if short:
        if _DOUBLED.sub(r"\1", t.text) == _DOUBLED.sub(r"\1", e.text):
            return max(similarity, _SHORT_DOUBLED_SIMILARITY), "spelling"
        if len(t.text) == len(e.text) and sorted(t.text) == sorted(e.text) and OSA.distance(t.text, e.text) == 1:
            return _SHORT_SWAPPED_SIMILARITY, "spelling"
        if OSA.distance(t.text, e.text) == 1 and len(t.text) != len(e.text):
            # A letter dropped from a part, or added: from a longer one, its similarity; from a three-letter one
            # (ALI, AL; VAN, VN), as good as a swap, which a lone letter changed (LI, LU) never is.
            return max(similarity, _SHORT_SWAPPED_SIMILARITY if min(len(t.text), len(e.text)) == 2 else 0.0), "spelling"
        return 0.0, ""
    if similarity < _MIN_TOKEN_SIMILARITY:
        return 0.0, ""
    return similarity, "spelling"


_KIND_TEXT = {
    "spelling": "spelling difference",
    "transliteration": "transliteration variant",
    "initial": "initials",
    "truncated": "cut at the MRZ field length",
    "joined": "name parts split or joined differently",
}


@dataclass(frozen=True)
class NameEvidence:
    score: float
    explanation: str
    decades: float = 0.0  # rarity of what agreed (name_rarity): how few people share the matched parts
    single: bool = False  # one side has a single name (ICAO 9303: primary identifier only)
    describe: Callable[[], str] | None = None  # the explanation, for a comparison made without one


def _both_fields(side: list[_Token]) -> bool:
    return len({t.field for t in side}) == 2


def _first_given_unmatched(side: list[_Token], aligned: Collection[int]) -> int | None:
    """Index of this side's first given name when it is unaligned while a later given name is aligned."""
    given = [k for k, token in enumerate(side) if token.field == "given"]
    if len(given) >= 2 and given[0] not in aligned and any(k in aligned for k in given[1:]):
        return given[0]
    return None


def compare_names(
    t_surname: str,
    t_given: str,
    e_surname: str,
    e_given: str,
    folds: dict[str, str],
    truncated: bool = False,
    rarity: dict[str, float] | None = None,
) -> NameEvidence:
    """Order-free token alignment of a traveller's and an entry's names (name_key forms); folds from
    fold_tokens() must cover every token and the concatenation of adjacent tokens; rarity from name_rarity()
    (None: every part as rare as an uncounted one)."""
    return _compare(_tokens(t_surname, t_given, folds), _tokens(e_surname, e_given, folds), folds, truncated, rarity)


class _Agreement(NamedTuple):
    """How one of the entry's parts agreed with a part of the traveller's."""

    similarity: float
    weight: float  # the alignment ranks by length; the score then weighs by rarity (_token_decades)
    kind: str  # a _KIND_TEXT key, or "exact"
    traveller: int  # index of the traveller's part


def _align(traveller: list[_Token], entry: list[_Token], truncated: bool) -> dict[int, _Agreement]:
    """The entry's parts (by index) that agree with a traveller's part, one to one, best similarity first."""
    last = len(traveller) - 1
    agreed: dict[int, _Agreement] = {}
    used: set[int] = set()
    # Equal parts first (what the ranked alignment below would pair first anyway: nothing else scores 1), so
    # that only the parts left over are compared with each other.
    equal: dict[str, list[int]] = {}
    for j, e in enumerate(entry):
        equal.setdefault(e.text, []).append(j)
    for i, t in enumerate(traveller):
        same = equal.get(t.text)
        if same:
            j = same.pop(0)
            used.add(i)
            agreed[j] = _Agreement(1.0, len(t.text), "joined" if (t.joined or entry[j].joined) else "exact", i)
    candidates = []
    for i, t in enumerate(traveller):
        if i in used:
            continue
        for j, e in enumerate(entry):
            if j in agreed:
                continue
            similarity, kind = _token_similarity(t, e, truncated and i == last)
            if similarity > 0:
                candidates.append((similarity, max(len(t.text), len(e.text)), i, j, kind))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    for similarity, weight, i, j, kind in candidates:
        if i not in used and j not in agreed:
            used.add(i)
            agreed[j] = _Agreement(similarity, weight, kind, i)
    return agreed


def _unmatched_cost(
    traveller: list[_Token],
    entry: list[_Token],
    agreed: dict[int, _Agreement],
    truncated: bool,
    rarity: dict[str, float] | None,
) -> tuple[float, int | None, int | None]:
    """What the parts that agree with nothing cost (decades), and the first given name unmatched on each
    side (entry, traveller) when a later one agrees."""
    used = {a.traveller for a in agreed.values()}
    extra = [i for i in range(len(traveller)) if i not in used]
    missing = [j for j in range(len(entry)) if j not in agreed]
    # A middle name dropped or added is the usual variant; the first given name absent on one side while a
    # later one agrees is not (records keep the name a person is called by), and it is what relatives and
    # namesakes share: that part is charged in full, like parts unmatched on both sides.
    first_missing = _first_given_unmatched(entry, agreed)
    first_extra = _first_given_unmatched(traveller, used)
    if extra and missing:
        # A part on each side that agrees with nothing: another name where the entry has one (AL RAWI, AL
        # MOSULI), evidence against as strong as the entry's part is rare.
        cost = _PART_DECADES * len(extra) + sum(max(_PART_DECADES, _token_decades(entry[j], rarity)) for j in missing)
        return cost, first_missing, first_extra
    missing_cost = _TRUNCATED_PART_COST if truncated else _EXTRA_PART_COST
    cost = _PART_DECADES * sum(1.0 if i == first_extra else _EXTRA_PART_COST for i in extra)
    cost += _PART_DECADES * sum(1.0 if j == first_missing else missing_cost for j in missing)
    return cost, first_missing, first_extra


def _compare(
    traveller: list[_Token],
    entry: list[_Token],
    folds: dict[str, str],
    truncated: bool,
    rarity: dict[str, float] | None,
    explain: bool = True,
) -> NameEvidence:
    if not traveller or not entry:
        return NameEvidence(0.0, "no name to compare")
    single = len(traveller) == 1 or len(entry) == 1
    traveller, entry = _join_compounds(traveller, entry, folds), _join_compounds(entry, traveller, folds)
    traveller, entry = _merge_boundaries(traveller, entry)
    agreed = _align(traveller, entry, truncated)
    if not agreed:
        return NameEvidence(0.0, "names do not match")
    # Agreeing parts weigh their rarity (a shared rare surname says more than a shared common given name);
    # the alignment above ranked them by similarity, then length.
    agreed = {j: a._replace(weight=_token_decades(entry[j], rarity)) for j, a in agreed.items()}
    matched = sum(a.similarity * a.weight for a in agreed.values())
    weight = sum(a.weight for a in agreed.values())
    cost, first_missing, first_extra = _unmatched_cost(traveller, entry, agreed, truncated, rarity)
    score = matched / (weight + cost)
    # Fields count as swapped only when both sides have both: a name written whole in one field ("NOORZAI,
    # ABDUL BASIR" in the surname) says nothing about which part is which.
    crossed = sum(a.weight for j, a in agreed.items() if traveller[a.traveller].field != entry[j].field)
    swapped = crossed * 2 > weight and _both_fields(traveller) and _both_fields(entry)
    if swapped:
        score *= _SWAP_FACTOR
    decades = sum(
        min(INITIAL_DECADES, a.weight) if a.kind == "initial" else a.similarity * a.weight for a in agreed.values()
    )
    used = {a.traveller for a in agreed.values()}
    extra = [t for i, t in enumerate(traveller) if i not in used]
    described = functools.partial(_describe, entry, agreed, first_missing, extra, first_extra, swapped, single)
    return NameEvidence(min(score, 1.0), described() if explain else "", decades, single, described)


def _describe(
    entry: list[_Token],
    agreed: dict[int, _Agreement],
    first_missing: int | None,
    extra: list[_Token],
    first_extra: int | None,
    swapped: bool,
    single: bool,
) -> str:
    """The explanation of an alignment made by _compare (only for the pairs that reach a band)."""
    parts = []
    for field, label in (("surname", "surname"), ("given", "given names")):
        indices = [j for j, e in enumerate(entry) if e.field == field]
        if not indices:
            continue
        aligned = [agreed[j] for j in indices if j in agreed]
        if not aligned:
            parts.append(f"{label} not matched")
            continue
        kinds = sorted({a.kind for a in aligned} - {"exact"}, key=list(_KIND_TEXT).index)
        absent = len(indices) - len(aligned)
        if not kinds and not absent:
            parts.append(f"{label} exact")
            continue
        field_score = sum(a.similarity * a.weight for a in aligned) / sum(a.weight for a in aligned)
        notes = [_KIND_TEXT[k] for k in kinds]
        if absent:
            notes.append(f"{absent} {'part' if absent == 1 else 'parts'} missing on the traveller")
        if field == "given" and first_missing is not None:
            notes.append("first given name among them")
        parts.append(f"{label} token match {field_score:.2f} ({', '.join(notes)})")
    if extra:
        first = ", the first given name among them" if first_extra is not None else ""
        parts.append(f"{len(extra)} extra name {'part' if len(extra) == 1 else 'parts'} on the traveller{first}")
    if swapped:
        parts.append("surname and given names in swapped fields")
    if single:
        parts.append("single name")
    return ", ".join(parts)
