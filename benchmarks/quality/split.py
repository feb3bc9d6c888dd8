"""The fixed tuning / held-out split of the quality data: the same forever, whatever the matcher does.

A record goes to the held-out part when the first 32 bits of sha256("{source}:{key}") modulo 100 fall below
HELD_OUT_PERCENT, else to the tuning part. The key names a cluster, not a row, so every variant of one
person (or one reference name) lands in the same part:

    un_sanctions  a listed person: "{untreated full_name}|{untreated date_of_birth}" (the traveller goes
                  with its entry); an innocent traveller: "{full_name}|{date_of_birth}" of its own row
    name_bench    the reference name (name2): every pair asked about one name goes one way
    aliases       the group

Generated sets are split by seed instead (different seeds for tuning and held-out: report.py).

Changing this file changes which records are held out, and so invalidates every held-out figure measured
before: don't.
"""

from __future__ import annotations

import hashlib

TUNING = "tuning"
HELD_OUT = "held-out"
PARTS = (TUNING, HELD_OUT)
HELD_OUT_PERCENT = 30


def part_of(source: str, key: str) -> str:
    """The part ("tuning" or "held-out") of the cluster key of a source."""
    bucket = int(hashlib.sha256(f"{source}:{key}".encode()).hexdigest()[:8], 16) % 100
    return HELD_OUT if bucket < HELD_OUT_PERCENT else TUNING


def person_key(full_name: str, date_of_birth: str) -> str:
    """The cluster key of a person of a list source: full name and date of birth as written in the file."""
    return f"{full_name}|{date_of_birth}"
