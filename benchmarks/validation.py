"""Validation speed: travellers per second through validate_manifest, against a field-touching baseline.

Manifests are 300-passenger demo manifests (synthetic.traffic.DemoTraffic, plus its crew). The baseline loop
reads every field validation reads (role, names, sex, birth date, nationality, residence, reference,
each document's type, number, issuer, expiry and MRZ) and does nothing with them: the floor any
validation of protobuf messages in Python pays. Both run in the same process, interleaved, best of
--repeat rounds.

    .venv/bin/python -m benchmarks.validation [--manifests 40] [--passengers 300] [--repeat 7]
        [--mrz]                                   # give every document a TD3 MRZ that agrees with it
        [--compare path/to/other_validation.py]   # also time another implementation (e.g. a git show copy)
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
from collections.abc import Callable

from services.edge.validation import validate_manifest
from services.paxlst.mrz import check_digit
from synthetic.traffic import DemoTraffic


def _manifests(count: int, passengers: int) -> list:
    traffic = DemoTraffic(seed=99)
    return [traffic.next_manifest(passengers=passengers) for _ in range(count)]


def _yymmdd(d) -> str:
    return f"{d.year % 100:02d}{d.month:02d}{d.day:02d}"


def add_mrz(m) -> None:
    """Give every document a TD3 zone that agrees with its fields (the name part is a placeholder)."""
    for t in m.travellers:
        for doc in t.documents:
            number, birth, expiry = f"{doc.number:<<9}", _yymmdd(t.date_of_birth), _yymmdd(doc.expiry)
            line1 = f"P<{doc.issuing_state}BENCH<<TRAVELLER".ljust(44, "<")
            line2 = f"{number}{check_digit(number)}{t.nationality}{birth}{check_digit(birth)}M"
            line2 += f"{expiry}{check_digit(expiry)}" + "<" * 14 + "0"
            line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:43])
            doc.mrz = f"{line1}\n{line2}"


def touch_fields(m) -> int:
    """Baseline: read each traveller's fields once, decide nothing."""
    n = 0
    for t in m.travellers:
        _ = (t.role, t.surname, t.given_names, t.sex, t.nationality, t.residence, t.passenger_ref)
        _ = (t.embarkation, t.debarkation)
        dob = t.date_of_birth
        _ = (dob.year, dob.month, dob.day)
        for doc in t.documents:
            _ = (doc.type, doc.number, doc.issuing_state, doc.mrz)
            exp = doc.expiry
            _ = (exp.year, exp.month, exp.day)
        n += 1
    return n


def _time(fn: Callable, manifests: list) -> float:
    started = time.perf_counter()
    for m in manifests:
        fn(m)
    return time.perf_counter() - started


def _load(path: str) -> Callable:
    spec = importlib.util.spec_from_file_location("_validation_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validate_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=int, default=40)
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--mrz", action="store_true", help="give every document an MRZ")
    parser.add_argument("--compare", help="a file defining another validate_manifest to time as well")
    args = parser.parse_args()

    manifests = _manifests(args.manifests, args.passengers)
    if args.mrz:
        for m in manifests:
            add_mrz(m)
    travellers = sum(len(m.travellers) for m in manifests)
    contenders: dict[str, Callable] = {
        "baseline (touch fields)": touch_fields,
        "validate_manifest": validate_manifest,
    }
    if args.compare:
        contenders[f"compare ({args.compare})"] = _load(args.compare)
    for fn in contenders.values():  # warm caches (country/port lookups, imports) outside the clock
        fn(manifests[0])
    rejected = sum(1 for m in manifests if validate_manifest(m)[0])

    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(args.repeat):
        for name, fn in contenders.items():
            best[name] = min(best[name], _time(fn, manifests))

    print(
        f"{args.manifests} manifests x ~{travellers // args.manifests} travellers ({travellers} in all), "
        f"{'every document with an MRZ, ' if args.mrz else ''}best of {args.repeat}; "
        f"Python {platform.python_version()} on {platform.machine()}"
    )
    if rejected:
        print(f"note: {rejected} of the demo manifests have validation errors")
    base = best["baseline (touch fields)"]
    for name, seconds in best.items():
        per_10 = seconds / travellers * 10 * 1e6
        print(
            f"  {name:<48} {travellers / seconds:>12,.0f} travellers/s   {per_10:>7.1f} us per 10 travellers"
            f"   {seconds / base:>5.1f}x baseline"
        )


if __name__ == "__main__":
    main()
