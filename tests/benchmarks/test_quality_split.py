"""The fixed tuning / held-out split (benchmarks/quality/split.py): deterministic, near 30 %, by cluster."""

import hashlib

import polars as pl

from benchmarks.quality import sources
from benchmarks.quality.split import HELD_OUT, TUNING, part_of, person_key


def test_the_split_is_a_fixed_hash_and_never_changes():
    # Pinned values: a change here moves records between the parts and voids every held-out figure.
    assert part_of("un_sanctions", "ABDULHAI SALEK|1965") == TUNING
    assert part_of("un_sanctions", "JANAN AGHA|1958") == HELD_OUT
    assert part_of("name_bench", "Olaf Scholz") == HELD_OUT
    assert part_of("aliases", "g1") == TUNING
    # The documented rule itself.
    for key in ("a", "b", "KIM SOK CHOL|1970-01-02"):
        bucket = int(hashlib.sha256(f"aliases:{key}".encode()).hexdigest()[:8], 16) % 100
        assert part_of("aliases", key) == (HELD_OUT if bucket < 30 else TUNING)


def test_the_split_is_deterministic_and_near_30_percent():
    keys = [f"person {i}|19{i % 100:02d}" for i in range(20_000)]
    first = [part_of("un_sanctions", k) for k in keys]
    assert first == [part_of("un_sanctions", k) for k in keys]
    share = first.count(HELD_OUT) / len(first)
    assert 0.28 < share < 0.32
    # The source is part of the key: another source splits the same keys differently.
    assert first != [part_of("name_bench", k) for k in keys]


def test_pairs_are_split_by_cluster_not_by_row(tmp_path):
    rows = ["case_group,schema,name1,name2,is_match,quality,category,notes"]
    for reference in ("Olaf Scholz", "Angela Merkel", "Sergei Lavrov", "Barack Obama", "Xi Jinping", "Pol Pot"):
        for variant in ("a", "b", "c"):
            rows.append(f"g,Person,{reference} {variant},{reference},true,MEDIUM,,")
    (tmp_path / sources.NAME_BENCH).write_text("\n".join(rows) + "\n")
    pairs = sources.name_bench(tmp_path).pairs
    assert pairs.group_by("cluster").agg(pl.col("part").n_unique())["part"].max() == 1
    assert set(pairs["part"]) == {TUNING, HELD_OUT}  # both parts are used across clusters


def test_a_listed_traveller_goes_with_its_entry(tmp_path):
    header = "full_name,first_name,middle_name,last_name,gender,date_of_birth,place_of_birth,nationality\n"
    untreated = [("ABDULHAI SALEK", "1965"), ("JANAN AGHA", "1958"), ("KIM SOK CHOL", "1970-03-04")]
    treated = [("SALEK, ABDULHAI", "1966"), ("JANAN AGHA", "1958"), ("KIM SKO CHOL", "1970-3-04")]
    (tmp_path / sources.UN_UNTREATED).write_text(header + "".join(f'"{n}",,,,,{d},,\n' for n, d in untreated))
    (tmp_path / sources.UN_TREATED).write_text(header + "".join(f'"{n}",,,,,{d},,\n' for n, d in treated))
    travellers = sources.un_sanctions(tmp_path).travellers
    # Keyed by the untreated (list) name and date, whatever the corrupted copy says.
    assert travellers["part"].to_list() == [part_of("un_sanctions", person_key(n, d)) for n, d in untreated]
