"""The screening quality report (benchmarks/quality/report.py, python -m benchmarks.quality) end to end on a tiny
generated set and small fixtures of the real data files."""

import json

import pytest

from benchmarks.quality import __main__ as cli
from benchmarks.quality import classes, report, sources
from benchmarks.quality.split import HELD_OUT, TUNING
from services import config

HEADER = "full_name,first_name,middle_name,last_name,gender,date_of_birth,place_of_birth,nationality\n"
LISTED = [
    ("ABDULHAI SALEK", "1965", "SALEK, ABDULHAI", "1965"),
    ("JANAN AGHA", "1958", "JANAN AGHA", "1959"),
    ("KIM SOK CHOL", "1970-03-04", "KIM SKO CHOL", "1970-3-04"),
    ("LAURENT NKUNDA", "1967-02-06", "LAUREN TNKUNDA", "1967-02-02"),
    ("ABDUL BASIR NOORZAI", "1960-05-07", "NOORZAI, ABDUL BASIR", "1960-07-05"),
    ("ABDUL ROSYID RIDHO BAASYIR", "1974-01-31", "ABDUL ROSYID RIDHO BAASYIR", "1974-01-32"),
    ("MUTHANNA HARITH SALMAN AL-DARI", "1969-07-16", "MUTHANNA HARITH SALMAN AL-DARI", "1969-7-16"),
    ("AFIZ", "1969", "AFIZ", "1969"),
    ("TAUFIK RIFKI", "1974-08-19", "TAUFIK RIFKI", ""),
    ("HAFIZ ABDUL SALAM BHUTTAVI", "1940", "HAFIZ ABUDL SALAM BHUTTAVI", "1940"),
]
INNOCENTS = [
    ("Patricia Lucas Wheeler", "2002-07-14"),
    ("Isabella Joaquin Torres", "1961-01-08"),
    ("Hannah Lynn Smith", "1992-06-07"),
    ("桂荣 兰", "1948-05-15"),
    ("حسین موسوی", "1945-04-29"),
]
PAIRS = [
    ("Olaf Scholze", "Olaf Scholz", "true"),
    ("Octavian Scholz", "Olaf Scholz", "false"),
    ("Angela Merkur", "Angela Merkel", "true"),
    ("Angelo Cruz", "Angela Merkel", "false"),
    ("Sergi Lavrov", "Sergei Lavrov", "true"),
    ("Sergey Ivanov", "Sergei Lavrov", "false"),
    ("Hans J Friedrich", "Hans Joachim Friedrich", "true"),
    ("Hans O Friedrich", "Hans Joachim Friedrich", "false"),
    ("Kim Jong-uun", "Kim Jong-un", "true"),
    ("Kim Yong-chol", "Kim Jong-un", "false"),
    ("SergeiLavrov", "Sergei Lavrov", "true"),
    ("Emanuel Macron", "Emmanuel Macron", "true"),
    ("Ihab Makhlouf", "Rami Makhlouf", "false"),
    ("Dr. Rami Makhlouf", "Rami Makhlouf", "true"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    (path / sources.UN_UNTREATED).write_text(HEADER + "".join(f'"{n}",,,,,{d},,\n' for n, d, _, _ in LISTED))
    (path / sources.UN_TREATED).write_text(HEADER + "".join(f'"{n}",,,,,{d},,\n' for _, _, n, d in LISTED))
    (path / sources.NEGATIVES).write_text(HEADER + "".join(f'"{n}",,,,,{d},,\n' for n, d in INNOCENTS))
    (path / sources.NAME_BENCH).write_text(
        "case_group,schema,name1,name2,is_match,quality,category,notes\n"
        + "".join(f"g,Person,{a},{b},{m},MEDIUM,,\n" for a, b, m in PAIRS)
        + "g,Company,Siemens AG,Siemens Aktiengesellschaft,true,STRONG,,\n"
    )
    (path / sources.ALIASES).write_text(
        "group,name1,name2,is_match,origin\n"
        + "".join(f"g{i % 5},{a},{b},{m},test\n" for i, (a, b, m) in enumerate(PAIRS))
    )
    return path


TINY = ["--innocents", "300", "--entries-per-variant", "4", "--background", "50", "--decoys", "10"]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "quality.json"
    lines: list[str] = []
    options = report.Options(
        seeds={TUNING: (11, 12), HELD_OUT: (101,)},
        per_variant=4,
        background=50,
        decoys=10,
        innocents=300,
        data=data,
    )
    result = report.run(options, out=lines.append)
    report.write_json(result, out)
    return lines, json.loads(out.read_text())


def test_the_report_covers_every_source_and_part(run):
    lines, result = run
    assert set(result["sources"]) == set(sources.ALL_SOURCES)
    assert result["alert"] == config.DEFAULT_SCREENING_ALERT and result["review"] == config.DEFAULT_SCREENING_REVIEW
    generated = result["sources"]["generated"]
    assert [s["seed"] for s in generated["parts"][TUNING]["seeds"]] == [11, 12]
    assert [s["seed"] for s in generated["parts"][HELD_OUT]["seeds"]] == [101]
    un = result["sources"]["un_sanctions"]
    assert sum(un["split"][p]["listed"] for p in (TUNING, HELD_OUT)) == len(LISTED)
    assert sum(un["split"][p]["innocents"] for p in (TUNING, HELD_OUT)) == len(INNOCENTS)
    text = "\n".join(lines)
    for heading in ("generated, tuning part", "generated, held-out part", "un_sanctions", "name_bench", "aliases"):
        assert heading in text
    assert "targets" in text and ("PASS" in text or "FAIL" in text)


def test_the_json_has_the_per_class_fields(run):
    _, result = run
    for metrics in (
        result["sources"]["generated"]["parts"][TUNING]["mean"],
        result["sources"]["generated"]["parts"][HELD_OUT]["seeds"][0]["metrics"],
        result["sources"]["un_sanctions"]["parts"][TUNING],
        result["sources"]["un_sanctions"]["parts"][HELD_OUT],
    ):
        expected = {f"date:{c}" for c in classes.DATE_CLASSES} | {f"name:{c}" for c in classes.NAME_CLASSES}
        assert set(metrics["classes"]) == expected
        for row in [*metrics["classes"].values(), *metrics["summary"].values()]:
            assert set(row) == {"travellers", "with_document", "recall_alert", "recall_review", "naive_recall"}
        assert set(metrics["bands"]) == {"alert", "review", "naive"}
        for band in metrics["bands"].values():
            assert {"precision", "false_alerts_per_10k", "matches", "innocents_alerted"} <= set(band)
    un = result["sources"]["un_sanctions"]["parts"]
    assert sum(un[p]["listed"] for p in (TUNING, HELD_OUT)) == len(LISTED)
    # Same-date people and near misses are found at the alert band in this easy fixture.
    listed = sum(un[p]["summary"]["all listed"]["travellers"] for p in (TUNING, HELD_OUT))
    assert listed == len(LISTED)
    bench = result["sources"]["name_bench"]
    assert bench["ours"]["threshold"] is not None
    assert sum(bench["split"][p]["pairs"] for p in (TUNING, HELD_OUT)) == len(PAIRS)
    targets = result["targets"]
    assert {t["source"] for t in targets} >= {"generated", "un_sanctions"}
    assert all({"name", "source", "part", "passed", "value"} == set(t) for t in targets)


def test_the_report_quotes_no_name_or_date_of_the_data(run):
    lines, _ = run
    text = "\n".join(lines).upper()
    for untreated, dob, treated, treated_dob in LISTED:
        for word in f"{untreated} {treated}".replace(",", " ").split():
            if len(word) >= 4:
                assert word not in text, word
        for date in (dob, treated_dob):
            if len(date) >= 7:
                assert date not in text, date
    for name, _ in INNOCENTS:
        assert name.upper() not in text


def test_misses_are_from_the_tuning_part_only(data):
    lines: list[str] = []
    options = report.Options(source_names=(sources.UN_SANCTIONS,), misses=50, data=data, alert=1.01)
    report.run(options, out=lines.append)
    text = "\n".join(lines)
    assert "developers only" in text
    missed = text.split("developers only")[1]
    listed = sources.un_sanctions(data).travellers.head(len(LISTED))
    shown = {
        p: [
            f"traveller {s} / {g} " in missed
            for s, g in listed.filter(part=p).select("surname_key", "given_key").rows()
        ]
        for p in (TUNING, HELD_OUT)
    }
    assert shown[TUNING] and all(shown[TUNING])  # above 1 every tuning traveller is a miss
    assert shown[HELD_OUT] and not any(shown[HELD_OUT])


def test_the_cli(data, tmp_path, capsys):
    assert cli.main([]) == 0
    assert "--seeds-held-out" in capsys.readouterr().out
    out = tmp_path / "q.json"
    argv = ["--report", "--sources", "un_sanctions,name_bench", "--part", "held-out", "--data", str(data)]
    assert cli.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out part" in printed and "tuning part --" not in printed
    result = json.loads(out.read_text())
    assert set(result["sources"]) == {"un_sanctions", "name_bench"}
    assert set(result["sources"]["un_sanctions"]["parts"]) == {HELD_OUT}
    with pytest.raises(SystemExit):
        cli.main(["--report", "--sources", "nothing"])
