"""Report of one suite run: Markdown with PNG plots (matplotlib, Agg) beside the raw JSON."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import screening  # noqa: E402


def _fmt(v, digits=0) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def _ms(v) -> str:
    return "n/a" if v is None else f"{v * 1000:,.0f}"


def plots(results: dict, out: Path) -> dict[str, str]:
    files = {}
    steps = results["end_to_end"]["steps"]
    if steps:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        x = [s["offered_travellers_per_s"] for s in steps]
        ax.plot(x, x, "--", color="grey", label="offered = accepted")
        ax.plot(x, [s["accepted_travellers_per_s"] for s in steps], "o-", label="accepted by intake")
        ax2 = ax.twinx()
        ax2.plot(x, [(s["latency_s"]["p95"] or 0) * 1000 for s in steps], "s-", color="tab:red", label="hit p95 (ms)")
        ax2.plot(
            x,
            [(s["passthrough_latency_s"]["p95"] or 0) * 1000 for s in steps],
            "^-",
            color="tab:orange",
            label="pass-through p95 (ms)",
        )
        ax.set_xlabel("offered load (travellers/s)")
        ax.set_ylabel("travellers/s")
        ax2.set_ylabel("latency p95 (ms)")
        ax.set_title("End to end: throughput and latency against offered load")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=110)
        plt.close(fig)
        files["throughput"] = "throughput.png"

        fig, ax = plt.subplots(figsize=(7, 4.2))
        data = [[v * 1000 for v in s["latencies_s"]] or [0] for s in steps]
        pt = [[v * 1000 for v in s["passthrough_latencies_s"]] or [0] for s in steps]
        pos = list(range(len(steps)))
        ax.boxplot(
            pt,
            positions=[p - 0.18 for p in pos],
            widths=0.3,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#fdd49e"},
        )
        ax.boxplot(
            data,
            positions=[p + 0.18 for p in pos],
            widths=0.3,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#9ecae1"},
        )
        ax.set_xticks(pos, [f"{s['offered_travellers_per_s']:,.0f}/s" for s in steps])
        ax.set_xlabel("offered load (travellers/s)")
        ax.set_ylabel("latency from receipt (ms)")
        ax.set_title("Latency distribution: pass-through (orange) vs hit at member (blue)")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        files["latency"] = "latency.png"

    scale = results.get("scale_out") or []
    if scale:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        n = [r["processes"] for r in scale]
        ax.plot(n, [r["travellers_per_s"] or 0 for r in scale], "o-", label="profiler processes")
        base = scale[0]["travellers_per_s"] or 0
        ax.plot(n, [base * k for k in n], "--", color="grey", label="linear from 1 process")
        pt = results.get("passthrough_drain", {}).get("travellers_per_s")
        if pt:  # far above the profiler: stated in the title rather than drawn, so the curve stays readable
            ax.set_title(f"Profiler scale-out on {results['machine']['cpus']} cores (pass-through: {pt:,.0f}/s)")
        ax.set_xticks(n)
        ax.set_xlabel("profiler processes in one consumer group (4 partitions)")
        ax.set_ylabel("travellers/s drained")
        if not pt:
            ax.set_title(f"Profiler scale-out on {results['machine']['cpus']} cores")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "scale_out.png", dpi=110)
        plt.close(fig)
        files["scale_out"] = "scale_out.png"

    curve = (results.get("screening") or {}).get("sizes") or []
    if curve:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        x = [r["entries"] for r in curve]
        ax.plot(x, [r["score_batch_travellers_per_s"] for r in curve], "o-", label="score_batch (rules, model, list)")
        ax.plot(
            x,
            [r["score_batch_without_watchlist_travellers_per_s"] for r in curve],
            "s--",
            label="score_batch, empty watchlist",
        )
        ax.plot(x, [r["fuzzy_matches_travellers_per_s"] for r in curve], "^:", label="fuzzy screening alone")
        t = results["screening"]["targets"]
        ax.axhline(
            t["travellers_per_s_target"],
            color="tab:red",
            lw=0.8,
            label=f"target at {t['target_entries']:,} entries ({t['travellers_per_s_target']:,}/s)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("watchlist entries")
        ax.set_ylabel("travellers/s (one process)")
        ax.set_title("Screening curve: travellers scored per second against list size")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "screening.png", dpi=110)
        plt.close(fig)
        files["screening"] = "screening.png"

    cost = results.get("cost")
    if cost:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        a = cost["answer"]
        bars = ax.bar(
            ["one regional hub", "one deployment per member"],
            [a["regional_cost"], a["per_member_cost"]],
            color=["tab:green", "tab:grey"],
        )
        ax.bar_label(bars, labels=[f"${a['regional_cost']:,.0f}", f"${a['per_member_cost']:,.0f}"])
        ax.set_ylabel("compute cost per year (USD)")
        ax.set_title(f"Compute cost, {a['members']} members in scope")
        fig.tight_layout()
        fig.savefig(out / "cost.png", dpi=110)
        plt.close(fig)
        files["cost"] = "cost.png"
    return files


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _screening_section(result: dict | None, files: dict[str, str]) -> list[str]:
    """The screening curve (benchmarks.screening), when this run measured it (`--full`)."""
    if not result:
        return []
    lines = ["", "## Screening curve (one profiler process, no Kafka)", ""]
    if result.get("error"):
        return lines + [f"Not measured: {result['error']}"]
    lines += [
        "`score_batch` as the profiler runs it, timed on one batch against synthetic watchlists of growing size. "
        + _sentence(screening.describe(result).replace("\n", "; "))
        + ". `python -m benchmarks.screening` runs it alone.",
        "",
        *screening.markdown(result),
        "",
        "Stages in µs per traveller (fastest round): frame = traveller frame and document numbers; features = "
        "derived features the rules and the model read; hits = the Hit messages.",
        "",
        *(f"* {_sentence(line)}" for line in screening.target_lines(result)),
    ]
    if "screening" in files:
        lines += ["", f"![screening]({files['screening']})"]
    return lines


def markdown(results: dict, files: dict[str, str]) -> str:
    m = results["machine"]
    lines = [
        f"# Pacific API Hub benchmark — {results['mode']} run, {results['started']}",
        "",
        f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GB, {m['platform']}, Python {m['python']}, "
        f"Java {m.get('java', '?')}. Broker: Apache Kafka {results['kafka_version']} (single node, loopback). "
        "The machine may be shared: read the **ratios**, measured in this run against baselines on the same broker.",
        "",
        "## Headline",
        "",
    ]
    for h in results["headline"]:
        lines.append(f"* {h}")
    raw = results.get("raw_kafka") or {}
    lines += ["", "## Baselines: raw Kafka (Apache Kafka's perf tools, same broker)", ""]
    if raw.get("error"):
        lines.append(f"Not measured: {raw['error']}")
    else:
        p, c = raw["producer"], raw["consumer"]
        lines += [
            f"Record size {p['record_bytes']:,} B (the mean canonical manifest record of this run's traffic, "
            f"{raw['travellers_per_record']:.0f} travellers).",
            "",
            "| Tool | records/s | MB/s | travellers/s equivalent |",
            "|---|---|---|---|",
            f"| ProducerPerformance (acks=all, linger 5 ms, 256 KB batches) | {_fmt(p['records_per_s'])} | "
            f"{p['mb_per_s']:.1f} | {_fmt(p['records_per_s'] * raw['travellers_per_record'])} |",
            f"| ConsumerPerformance | {_fmt(c['records_per_s'])} | {c['mb_per_s']:.1f} | "
            f"{_fmt(c['records_per_s'] * raw['travellers_per_record'])} |",
        ]
    intake = results.get("intake")
    if intake:
        lines += [
            "",
            f"## Intake ({intake['manifests']} manifests, {intake['travellers']:,} travellers per path)",
            "",
            "| Path | travellers/s | ratio to pass-through producer | ingest CPU (cores) | not accepted |",
            "|---|---|---|---|---|",
        ]
        for name, r in intake["paths"].items():
            lines.append(
                f"| {name} | {_fmt(r['travellers_per_s'])} | {r['ratio_to_baseline']:.2f} | "
                f"{r['cpu']['ingest']['cpu_cores']} | {r.get('not_accepted', 0)} |"
            )
    scale = results.get("scale_out") or []
    if scale:
        pt = results.get("passthrough_drain", {})
        lines += [
            "",
            "## Profiler and scale-out (draining a backlog of manifests, consumer group, 4 partitions)",
            "",
            "| Consumer | processes | travellers/s | ratio to pass-through | consumer CPU-s | peak RSS/process (MB) |",
            "|---|---|---|---|---|---|",
        ]
        rows = [("pass-through", pt)] + [("profiler", r) for r in scale]
        for name, r in rows:
            if not r:
                continue
            cpu = [v for k, v in r["cpu"].items() if k != "broker"]
            ratio = (r["travellers_per_s"] or 0) / pt["travellers_per_s"] if pt.get("travellers_per_s") else None
            mark = " (coarse)" if r.get("coarse") else ""
            lines.append(
                f"| {name} | {r['processes']} | {_fmt(r['travellers_per_s'])}{mark} | {_fmt(ratio, 3)} | "
                f"{sum(c['cpu_seconds'] for c in cpu):.1f} | {max(c['peak_rss_mb'] for c in cpu):.0f} |"
            )
        coarse = [r for _, r in rows if r and r.get("coarse")]
        if coarse:
            lines += [
                "",
                f"Rows marked coarse drained their backlog within {max(r['window_samples'] for r in coarse)} "
                "offset samples or fewer (50 ms apart, offsets committed batch by batch): their rates, and ratios "
                "against them, are good to within a factor. `--full` drains a bigger backlog.",
            ]
        if "scale_out" in files:
            lines += ["", f"![scale-out]({files['scale_out']})"]
    lines += _screening_section(results.get("screening"), files)
    router = results.get("router")
    if router:
        lines += [
            "",
            "## Router (draining the hits the profiler produced)",
            "",
            "| Consumer | hits/s | ratio to pass-through |",
            "|---|---|---|",
        ]
        rt, pt = router["router"], router["passthrough"]
        ratio = (rt["records_per_s"] or 0) / pt["records_per_s"] if pt.get("records_per_s") else None
        for name, r, r_ratio in (("router", rt, _fmt(ratio, 3)), ("pass-through", pt, "1.000")):
            lines.append(f"| {name} | {_fmt(r['records_per_s'])}{' (coarse)' if r.get('coarse') else ''} | {r_ratio} |")
    steps = results["end_to_end"]["steps"]
    if steps:
        lines += [
            "",
            "## End to end: receipt at intake → hit delivered at a member (gRPC Follower)",
            "",
            "Open-loop pacer (unary gRPC, 16 sender threads); the pass-through consumer reads the same manifests "
            "at the same time (receipt → record consumed). Latencies in ms.",
            "",
            "| offered trav/s | accepted trav/s | hits | hit p50 | p95 | p99 | pass-through p50 | p95 | p99 | "
            "CPU cores ingest / profiler / router / broker | travellers per CPU-second |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in steps:
            lat, pt = s["latency_s"], s["passthrough_latency_s"]
            c = s["cpu"]
            cores = " / ".join(f"{c[k]['cpu_cores']:.2f}" for k in ("ingest", "profiler", "router", "broker"))
            lines.append(
                f"| {_fmt(s['offered_travellers_per_s'])} | {_fmt(s['accepted_travellers_per_s'])} | {s['hits']} | "
                f"{_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | {_ms(pt['p50'])} | {_ms(pt['p95'])} | "
                f"{_ms(pt['p99'])} | {cores} | {_fmt(s['travellers_per_cpu_second'])} |"
            )
        for key in ("throughput", "latency"):
            if key in files:
                lines += ["", f"![{key}]({files[key]})"]
    cost = results.get("cost")
    if cost:
        a = cost["answer"]
        lines += [
            "",
            "## Cost: one regional hub versus one deployment per member",
            "",
            f"**Answer (compute only):** {a['members']} members in scope, {a['annual_travellers']:,.0f} API travellers "
            f"a year, regional peak {a['regional_peak_per_s']:.1f} travellers/s. One regional hub needs "
            f"{a['regional_cores_needed']:.3f} cores for the load and {a['regional_vcpus']:.0f} vCPUs for high "
            f"availability: **${a['regional_cost']:,.0f}/year** (${a['cost_per_1000_regional']:.2f} per 1,000 "
            f"travellers). One deployment per member: {a['per_member_vcpus']:.0f} vCPUs, "
            f"**${a['per_member_cost']:,.0f}/year** (${a['cost_per_1000_per_member']:.2f} per 1,000). "
            f"The hub's minimal footprint carries **{a['headroom']:,.0f}×** today's regional peak.",
            "",
            f"Capacity per core used: {cost['assumptions']['capacity_per_core']:,.0f} travellers/s "
            f"({cost['capacity_basis']}).",
            "",
            "### Assumptions (override with `--assume key=value`)",
            "",
            "| Assumption | Value | Source |",
            "|---|---|---|",
        ]
        for k, v in cost["assumptions"].items():
            lines.append(f"| {k} | {v} | {cost['sources'].get(k, 'measured in this run')} |")
        lines += [
            "",
            "### Traffic (visitor arrivals)",
            "",
            "| Member | arrivals | year | in scope | source |",
            "|---|---|---|---|---|",
        ]
        for mem in cost["members"]:
            lines.append(
                f"| {mem['code']} | {mem['arrivals']:,.0f} | {mem['year']} | "
                f"{'yes' if mem['in_scope_default'] else 'no'} | {mem['source']} |"
            )
        lines += [
            "",
            "### Sensitivity (one assumption at a time)",
            "",
            "| Assumption | case | value | regional $/yr | per-member $/yr | per-member / regional |",
            "|---|---|---|---|---|---|",
        ]
        for r in cost["sensitivity"]:
            lines.append(
                f"| {r['assumption']} | {r['case']} | {r['value']:,.3g} | {r['regional_cost']:,.0f} | "
                f"{r['per_member_cost']:,.0f} | {r['ratio']:.1f} |"
            )
        if "cost" in files:
            lines += ["", f"![cost]({files['cost']})"]
    lines += ["", "Raw results: `results.json` in this folder (per-step latencies, CPU and memory per process)."]
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path) -> Path:
    files = plots(results, out)
    path = out / "report.md"
    path.write_text(markdown(results, files))
    return path
