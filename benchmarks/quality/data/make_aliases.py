"""Derive aliases.csv (labelled person-name pairs) from ofac_sdn_alt_excerpt.csv.

Standard library only; deterministic (fixed seed, no dependence on dict or set order). Run from anywhere:

    python benchmarks/quality/data/make_aliases.py            # rewrites aliases.csv beside this file
    python benchmarks/quality/data/make_aliases.py --check    # exits 1 if aliases.csv differs from a fresh run

Input: ofac_sdn_alt_excerpt.csv, the first 1,475 lines (63,990 characters) of the U.S. Treasury OFAC SDN list's
alternate-names file alt.csv, copied unchanged (see SOURCES-aliases.md). Its columns, without a header row, are
ent_num (the listed entry), alt_num, alt_type (aka / fka / nka), alt_name, alt_remarks.

Output: aliases.csv with the header group,name1,name2,is_match,origin.

1. Persons. An alt_name is taken as a person's name when it is written "SURNAME, Given names" with lower-case
   letters after the first comma: OFAC writes individuals that way and entities, vessels and aircraft in
   capitals ("TROVER, S.A.", "AL TAIBAH, INTL." stay out). Person aliases written without a comma
   ("GAMEL MOHAMED") are left out too: nothing in the file tells them from an organisation's name. Names are
   kept as written (whitespace collapsed), so the comma still marks the surname.
2. Groups. All person aliases of one ent_num form one group, id "sdn-<ent_num>". The entry's primary name lives
   in sdn.csv, which is not part of the excerpt, so only aliases are paired.
3. Positives (is_match true): two aliases of the same group whose spellings differ once case, spaces and
   punctuation are ignored ("AL FAWWAZ" / "AL-FAWWAZ" is not a pair) and that are related: some name word of
   one is within edit distance RELATED_DISTANCE x its length (at least 1) of a word of the other, particles
   (AL, BIN, ABU, ...) and titles (DR, SHEIKH, ...) aside ("MARZOOK" / "MARZUQ", "ABBUD" / "ABOUD"; short words
   two edits apart only with the same first and last letter: related_words()). The second rule drops aliases
   that share nothing ("GUZMAN, Chapo" / "ORTEGA, Miguel": the same person, but a name matcher is never asked
   to join them, since a screening system lists each alias on its own); --keep-unrelated keeps them. At most
   POSITIVES_PER_GROUP pairs per group (a seeded sample), so the few groups with twenty-odd aliases don't swamp
   the set; name1/name2 order is a seeded coin flip.
4. Negatives (is_match false): as many per group as that group has positives. name2 is an alias of the group
   (its aliases in turn), name1 a person alias of another ent_num (single-alias entries included). Hardness is
   judged on the core form (name words without particles and titles, surname first): a hard candidate starts
   with the same letter and is at most MAX_LENGTH_GAP letters longer or shorter; name1 is a seeded pick among
   the HARDEST hard candidates most similar to name2 (difflib ratio; each earlier use of a name as name1 counts
   REUSE_PENALTY against it). With no hard candidate left: the same first letter, then any. A negative row
   carries name2's group. name1 is drawn only from groups that benchmarks/quality/split.py puts in the same
   part (tuning / held-out) as name2's group, so no name of a held-out group appears in a tuning row or the
   other way round; the rule is restated in part_of() below and must stay equal to split.py's. Two names with
   the same letters are never a negative (different listed persons sharing one spelling can't be told apart by
   name), and no pair is used twice.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import hashlib
import io
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_FILE = HERE / "ofac_sdn_alt_excerpt.csv"
OUTPUT_FILE = HERE / "aliases.csv"
ORIGIN = "ofac-sdn-alt"
SEED = 20250101
POSITIVES_PER_GROUP = 15
MAX_LENGTH_GAP = 3
HARDEST = 5  # a negative's name1 is drawn from the HARDEST most similar hard candidates
RELATED_DISTANCE = 0.4
REUSE_PENALTY = 0.1
SPLIT_SOURCE = "aliases"  # the source name split.py hashes with
HELD_OUT_PERCENT = 30  # split.py's HELD_OUT_PERCENT

# Words that say little about who someone is: Arabic particles, kinship and article words, titles. Only used by
# the "related" test of rule 3, never to alter a name.
PARTICLES = frozenset(
    {
        *("AL", "EL", "ABU", "ABOU", "ABD", "ABDUL", "ABDEL", "BIN", "BEN", "IBN", "BINT", "UL", "UD", "UR"),
        *("DE", "DEL", "DI", "LA", "LE", "VAN", "VON", "Y"),
        *("DR", "SHEIKH", "SHEIK", "SHAYKH", "SHAIKH", "HAJI", "USTAD", "GENERAL", "COL", "LT", "RTD", "JR", "MR"),
    }
)


def person_name(alt_name: str) -> str | None:
    """The alias as written (whitespace collapsed) when it is a person's name by rule 1, else None."""
    name = " ".join(alt_name.split())
    surname, comma, given = name.partition(", ")
    if not comma or not surname or not re.search(r"[a-z]", given):
        return None
    return name


def letters(name: str) -> str:
    """Upper-case letters only: the form two spellings are compared in."""
    return "".join(ch for ch in name.upper() if ch.isalpha())


def words(name: str) -> list[str]:
    """Upper-case letter runs of two or more letters, particles and titles left out."""
    return [w for w in re.findall(r"[A-Za-z]+", name.upper()) if len(w) > 1 and w not in PARTICLES]


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def related_words(a: str, b: str) -> bool:
    """Edit distance within RELATED_DISTANCE x the longer length (at least 1); a word of five letters or fewer
    two edits away only when it starts and ends like the other ("NEZAM" / "NAZIM", not "AYMAN" / "AHMAD")."""
    distance = edit_distance(a, b)
    longest = max(len(a), len(b))
    if distance > max(1, round(longest * RELATED_DISTANCE)):
        return False
    return distance <= 1 or longest > 5 or (a[0] == b[0] and a[-1] == b[-1])


def related(a: str, b: str) -> bool:
    """Some name word of a is related (related_words) to a name word of b."""
    return any(related_words(wa, wb) for wa in words(a) for wb in words(b))


def core(name: str) -> str:
    """The name's words without particles and titles, surname first as written: what hardness is judged on."""
    return " ".join(words(name)) or letters(name)


def part_of(group: str) -> str:
    """benchmarks/quality/split.py's part_of(SPLIT_SOURCE, group), restated so this file needs nothing else."""
    bucket = int(hashlib.sha256(f"{SPLIT_SOURCE}:{group}".encode()).hexdigest()[:8], 16) % 100
    return "held-out" if bucket < HELD_OUT_PERCENT else "tuning"


def read_groups(path: Path) -> dict[str, list[str]]:
    """group id -> its person aliases in file order, distinct by letters (the first spelling kept)."""
    groups: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            ent_num, _alt_num, _alt_type, alt_name, _remarks = row
            name = person_name(alt_name)
            if name is None:
                continue
            group = f"sdn-{ent_num.strip()}"
            key = letters(name)
            if key in seen.setdefault(group, set()):
                continue
            seen[group].add(key)
            groups.setdefault(group, []).append(name)
    return groups


def build(keep_unrelated: bool = False) -> tuple[list[tuple[str, str, str, bool]], dict[str, int]]:
    rng = random.Random(SEED)
    groups = read_groups(SOURCE_FILE)
    stats = {"person_aliases": sum(len(v) for v in groups.values()), "groups": len(groups), "unrelated_dropped": 0}

    positives: dict[str, list[tuple[str, str]]] = {}
    for group, names in groups.items():
        pairs = []
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                if keep_unrelated or related(names[i], names[j]):
                    pairs.append((names[i], names[j]))
                else:
                    stats["unrelated_dropped"] += 1
        if len(pairs) > POSITIVES_PER_GROUP:
            pairs = rng.sample(pairs, POSITIVES_PER_GROUP)
        pairs = [(b, a) if rng.random() < 0.5 else (a, b) for a, b in pairs]
        if pairs:
            positives[group] = pairs

    # Every person alias with its group, letters form and core form, in file order, for drawing negatives.
    pool = [(group, name, letters(name), core(name)) for group, names in groups.items() for name in names]
    parts = {group: part_of(group) for group in groups}

    rows: list[tuple[str, str, str, bool]] = []
    used: set[frozenset[str]] = set()
    drawn: dict[str, int] = {}
    tiers = {"hard": 0, "same_initial": 0, "any": 0}
    for group, pairs in positives.items():
        rows.extend((group, a, b, True) for a, b in pairs)
        keys_here = {letters(n) for n in groups[group]}
        same_part = [x for x in pool if x[0] != group and parts[x[0]] == parts[group] and x[2] not in keys_here]
        entries = groups[group]
        for index in range(len(pairs)):
            entry = entries[index % len(entries)]
            entry_core = core(entry)
            size = len(entry_core.replace(" ", ""))
            free = [x for x in same_part if frozenset((x[1], entry)) not in used]
            initial = [x for x in free if x[3][0] == entry_core[0]]
            hard = [x for x in initial if abs(len(x[3].replace(" ", "")) - size) <= MAX_LENGTH_GAP]
            for tier, candidates in (("hard", hard), ("same_initial", initial), ("any", free)):
                if not candidates:
                    continue
                if tier == "hard":
                    # the most similar few (a name already drawn as name1 counts as REUSE_PENALTY less similar
                    # per use, so one name doesn't serve every group), ties in file order, then a seeded pick
                    ranked = sorted(
                        range(len(candidates)),
                        key=lambda i: (
                            REUSE_PENALTY * drawn.get(candidates[i][1], 0)
                            - difflib.SequenceMatcher(None, candidates[i][3], entry_core).ratio()
                        ),
                    )
                    candidates = [candidates[i] for i in ranked[:HARDEST]]
                traveller = rng.choice(candidates)[1]
                used.add(frozenset((traveller, entry)))
                drawn[traveller] = drawn.get(traveller, 0) + 1
                rows.append((group, traveller, entry, False))
                tiers[tier] += 1
                break
    stats.update({f"negatives_{k}": v for k, v in tiers.items()})
    stats["positives"] = sum(1 for r in rows if r[3])
    stats["negatives"] = sum(1 for r in rows if not r[3])
    stats["groups_with_positives"] = len(positives)
    return rows, stats


def render(rows: list[tuple[str, str, str, bool]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "name1", "name2", "is_match", "origin"])
    for group, name1, name2, is_match in rows:
        writer.writerow([group, name1, name2, "true" if is_match else "false", ORIGIN])
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with aliases.csv instead of writing it")
    parser.add_argument("--keep-unrelated", action="store_true", help="keep positives that share no related word")
    parser.add_argument("--output", type=Path, default=OUTPUT_FILE)
    args = parser.parse_args()
    rows, stats = build(keep_unrelated=args.keep_unrelated)
    text = render(rows)
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output.name}: {'up to date' if same else 'differs from a fresh derivation'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(" ".join(f"{k}={v}" for k, v in stats.items()), f"-> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
