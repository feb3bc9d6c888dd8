"""Loading the quality sources (benchmarks/quality/sources.py): name splitting, dates, the files' formats."""

import polars as pl
import pytest

from benchmarks.quality import sources
from benchmarks.quality.split import HELD_OUT, TUNING

HEADER = "full_name,first_name,middle_name,last_name,gender,date_of_birth,place_of_birth,nationality\n"


def write_people(path, people):
    path.write_text(HEADER + "".join(f'"{name}",,,,,{dob},"Kabul, Afghanistan",af\n' for name, dob in people))


@pytest.mark.parametrize(
    ("full_name", "expected"),
    [
        ("SALEK, ABDULHAI", ("SALEK", "ABDULHAI", True)),
        ("NOORZAI, ABDUL BASIR", ("NOORZAI", "ABDUL BASIR", True)),
        ("ABDUL BASIR NOORZAI", ("NOORZAI", "ABDUL BASIR", False)),
        ("JAN  MOHAMMAD MADANI IKRAM", ("IKRAM", "JAN MOHAMMAD MADANI", False)),
        ("AFIZ", ("AFIZ", "", False)),
        ("  ", ("", "", False)),
        ("桂荣 兰", ("兰", "桂荣", False)),
    ],
)
def test_full_names_split_as_a_carrier_keys_them(full_name, expected):
    assert sources.split_full_name(full_name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1965", "1965"),
        ("1960-06-29", "1960-06-29"),
        ("1969-7-16", "1969-07-16"),
        ("1981-3-05", "1981-03-05"),
        ("1974-01-32", "1974-01-32"),
        ("1974-13-05", "1974-13-05"),
        ("", ""),
        ("about 1960", ""),
    ],
)
def test_dates_are_zero_padded_and_kept_out_of_range(text, expected):
    assert sources.normalise_date(text) == expected


def test_un_sanctions_entries_and_travellers(tmp_path):
    write_people(
        tmp_path / sources.UN_UNTREATED,
        [("ABDULHAI SALEK", "1965"), ("ABDUL ROSYID RIDHO BA'ASYIR", "1974-01-31"), ("DOST MOHAMMAD", "")],
    )
    write_people(
        tmp_path / sources.UN_TREATED,
        [("SALEK, ABDULHAI", "1966"), ("ABDUL ROSYID RIDHO BA'ASYIR", "1974-01-32"), ("DOST MOHAMAD", "")],
    )
    write_people(tmp_path / sources.NEGATIVES, [("Patricia Lucas Wheeler", "2002-07-14"), ("桂荣 兰", "1948-05-15")])
    screening = sources.un_sanctions(tmp_path)
    assert [(e.entry_id, e.surname, e.given_names) for e in screening.entries] == [
        ("UN-00000", "SALEK", "ABDULHAI"),
        ("UN-00001", "BA'ASYIR", "ABDUL ROSYID RIDHO"),
        ("UN-00002", "MOHAMMAD", "DOST"),
    ]
    assert (screening.entries[1].date_of_birth.month, screening.entries[1].date_of_birth.day) == (1, 31)
    assert screening.entries[2].date_of_birth.year == 0
    travellers = screening.travellers
    assert travellers.columns == list(sources.TRAVELLER_SCHEMA)
    assert travellers["surname_key"].to_list() == ["SALEK", "BAASYIR", "MOHAMAD", "WHEELER", "LAN"]
    assert travellers["given_key"].to_list()[:2] == ["ABDULHAI", "ABDUL ROSYID RIDHO"]
    assert travellers["dob"].to_list() == ["1966", "1974-01-32", "", "2002-07-14", "1948-05-15"]
    assert travellers["comma"].to_list() == [True, False, False, False, False]
    assert travellers["truth"].to_list() == ["UN-00000", "UN-00001", "UN-00002", None, None]
    assert travellers["kind"].to_list() == [sources.LISTED] * 3 + [sources.INNOCENT] * 2
    assert set(travellers["part"]) <= {TUNING, HELD_OUT}
    assert travellers["documents"].to_list() == [[]] * 5
    assert screening.entry_commas == frozenset()


def test_un_sanctions_needs_row_aligned_files(tmp_path):
    write_people(tmp_path / sources.UN_UNTREATED, [("ABDULHAI SALEK", "1965")])
    write_people(tmp_path / sources.UN_TREATED, [])
    with pytest.raises(ValueError, match="row-aligned"):
        sources.un_sanctions(tmp_path)


def test_un_sanctions_without_innocents_says_so(tmp_path):
    write_people(tmp_path / sources.UN_UNTREATED, [("ABDULHAI SALEK", "1965")])
    write_people(tmp_path / sources.UN_TREATED, [("ABDULHAI SALEK", "1965")])
    screening = sources.un_sanctions(tmp_path)
    assert screening.travellers.height == 1
    assert any("no innocent travellers" in note for note in screening.notes)


def test_name_bench_keeps_person_pairs(tmp_path):
    (tmp_path / sources.NAME_BENCH).write_text(
        "case_group,schema,name1,name2,is_match,quality,category,notes\n"
        "nk,Person,Olaf Scholze,Olaf Scholz,true,STRONG,,\n"
        "nk,Company,Siemens AG,Siemens Aktiengesellschaft,true,STRONG,,\n"
        'nk,Person,"AL BEN ALI, Isa Ben Tarif",Shaikh Isa Bin Tarif Al Bin Ali,true,MEDIUM,,\n'
        "nk,Person,Friedrich Hans,Hans Friedrich,false,MEDIUM,,\n"
        "nk,Person,Фрэнк Рихтер,Frederik Richter,false,MEDIUM,,\n"
    )
    pairs = sources.name_bench(tmp_path).pairs
    assert pairs.columns == list(sources.PAIR_SCHEMA)
    assert pairs["is_match"].to_list() == [True, True, False, False]
    assert pairs["cluster"].to_list()[0] == "Olaf Scholz"
    assert pairs.row(1, named=True) | {"part": None} == {
        "cluster": "Shaikh Isa Bin Tarif Al Bin Ali",
        "part": None,
        "is_match": True,
        "t_surname": "AL BEN ALI",
        "t_given": "ISA BEN TARIF",
        "t_comma": True,
        "e_surname": "ALI",
        "e_given": "SHAIKH ISA BIN TARIF AL BIN",
        "e_comma": False,
    }
    assert pairs["t_surname"][3] == "RIKHTER"  # other scripts transliterated by name_key


def test_aliases_are_optional(tmp_path):
    assert sources.aliases(tmp_path) is None
    (tmp_path / sources.ALIASES).write_text(
        "group,name1,name2,is_match,origin\n"
        "g1,Mohammed Yusuf,Muhammad Yousef,true,x\n"
        "g1,Ali Omar,Muhammad Yousef,false,x\n"
    )
    pairs = sources.aliases(tmp_path).pairs
    assert pairs["cluster"].to_list() == ["g1", "g1"]
    assert pairs["part"].n_unique() == 1
    assert pairs["is_match"].to_list() == [True, False]


def test_generated_sets_carry_the_common_columns():
    screening = sources.generated(3, "held-out", per_variant=2, background=5, decoys=2, innocents=20)
    travellers = screening.travellers
    assert travellers.columns == list(sources.TRAVELLER_SCHEMA)
    assert set(travellers["part"]) == {HELD_OUT}
    assert travellers.filter(pl.col("truth").is_not_null()).height > 0
    assert int((travellers["kind"] == sources.INNOCENT).sum()) == 20
    assert screening.seed == 3
