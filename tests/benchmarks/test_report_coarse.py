"""A pass-through drain too quick to time is reported as coarse, with every ratio against it."""

from benchmarks import report, suite


def _drain(rate, processes=1, coarse=False, window=40):
    cpu = {"consumer0": {"cpu_seconds": 1.0, "peak_rss_mb": 100.0, "cpu_cores": 0.5}}
    return {
        "travellers_per_s": rate,
        "records_per_s": rate / 250,
        "processes": processes,
        "cpu": cpu,
        "coarse": coarse,
        "window_samples": window,
    }


def _results(coarse):
    return {
        "mode": "quick",
        "started": "2026-11-30T00:00:00+00:00",
        "kafka_version": "4.3.1",
        "machine": {"cpus": 2, "memory_gb": 8.0, "platform": "linux", "python": "3.11"},
        "raw_kafka": {"error": "not run in this test"},
        "intake": {"paths": {"baseline_producer": {"travellers_per_s": 100_000, "ratio_to_baseline": 1.0}}},
        "passthrough_drain": _drain(3_000_000, coarse=coarse, window=3 if coarse else 40),
        "scale_out": [_drain(150_000)],
        "end_to_end": {"steps": []},
        "headline": [],
    }


def _report(results, tmp_path) -> str:
    # The intake section is not under test here (the headline reads it; the report wants more of it).
    return report.write({k: v for k, v in results.items() if k != "intake"}, tmp_path).read_text()


def test_a_coarse_pass_through_is_flagged_in_the_report_and_headline(tmp_path):
    results = _results(coarse=True)
    text = _report(results, tmp_path)
    assert "| pass-through | 1 | 3,000,000 (coarse) |" in text
    assert "within 3 offset samples or fewer" in text
    assert any("pass-through consumer (3,000,000/s, coarse)" in line for line in suite._headline(results))


def test_a_well_timed_pass_through_is_not(tmp_path):
    results = _results(coarse=False)
    assert "offset samples" not in _report(results, tmp_path)
    assert not any("coarse" in line for line in suite._headline(results))
