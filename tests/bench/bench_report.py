#!/usr/bin/env python3
"""Turns `ipckit bench --json` runs into the table and chart of docs/performance.md.

    ipckit bench --json --pin same > run1.json   (three times)
    python3 tests/bench/bench_report.py run1.json run2.json run3.json \
        --markdown table.md --svg docs/performance.svg

Each figure is the median over the runs given. Only the standard library is used.
"""
import argparse
import json
import statistics
import sys
from xml.sax.saxutils import escape

WAYS = ["raw_blocking", "raw_epoll", "asio_async", "ipckit_blocking", "ipckit_async", "ipckit_async_spin"]
COLOURS = {"raw_blocking": "#9e9e9e", "raw_epoll": "#616161", "asio_async": "#8d6e63",
           "ipckit_blocking": "#64b5f6", "ipckit_async": "#1565c0", "ipckit_async_spin": "#ef6c00"}


def ways_measured(merged):
    """The ways that ran somewhere in these runs, in WAYS order."""
    return [w for w in WAYS if any(e["figures"].get(w) for e in merged)]


def load(paths):
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    return runs


def merge(runs):
    """Rows keyed by (name, kind), in the first run's order, figures as medians."""
    order, rows = [], {}
    for run in runs:
        for row in run["rows"]:
            key = (row["name"], row["kind"])
            if key not in rows:
                order.append(key)
                rows[key] = {"row": row, "figures": {}, "ratios": {}}
            merged = rows[key]
            for way, measured in row["ways"].items():
                if measured["skipped"]:
                    merged["figures"].setdefault(way, None)
                    continue
                slot = merged["figures"].setdefault(way, {})
                if slot is None:
                    slot = merged["figures"][way] = {}
                for name, value in measured["figures"].items():
                    slot.setdefault(name, []).append(value)
            for name, value in row["ratios"].items():
                merged["ratios"].setdefault(name, []).append(value)
    result = []
    for key in order:
        merged = rows[key]
        figures = {way: (None if f is None else {n: statistics.median(v) for n, v in f.items()})
                   for way, f in merged["figures"].items()}
        ratios = {n: statistics.median(v) for n, v in merged["ratios"].items()}
        result.append({"row": merged["row"], "figures": figures, "ratios": ratios})
    return result


def fmt(value):
    if value is None:
        return "–"
    if value < 0.01:
        return "≈0"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(merged, runs):
    options = runs[0]["options"]
    out = [f"Medians of {len(runs)} runs, `--pin {options['pin']}`, {options['iterations']} round trips "
           f"per way, {options['stream_bytes'] >> 20} MiB per stream. Ratios are the median of each run's "
           "own ratio (ipckit against the baseline measured in the same run), so they need not equal "
           "the ratio of the medians shown.", ""]
    ways = ways_measured(merged)
    out.append("| benchmark | unit | " + " | ".join(w.replace("_", " ") for w in ways) + " | ratios |")
    out.append("|---|---|" + "---:|" * len(ways) + "---|")
    for entry in merged:
        row = entry["row"]
        if row["skipped"]:
            out.append(f"| {row['name']} {row['kind']} | | skipped: {row['skipped']} |" + " |" * len(ways))
            continue
        cells = []
        for way in ways:
            figures = entry["figures"].get(way, "absent")
            if figures == "absent":
                cells.append("")
            elif figures is None:
                cells.append("n/a")
            else:
                text = fmt(figures.get(row["headline"]))
                if "p99" in figures and row["kind"] == "round_trip":
                    text += f" (p99 {fmt(figures['p99'])})"
                if "bytes_per_connection" in figures:
                    text += f" ({fmt(figures['bytes_per_connection'])} B/conn)"
                cells.append(text)
        ratios = ", ".join(f"{name.replace('ipckit_', '').replace('raw_', 'raw ')} {value:.2f}"
                           for name, value in entry["ratios"].items())
        unit = "µs" if row["unit"] == "us" else row["unit"]
        out.append(f"| {row['name']} {row['kind'].replace('_', ' ')} | {unit} | " + " | ".join(cells) +
                   f" | {ratios} |")
    return "\n".join(out) + "\n"


def panel(entries, title, unit, top, width):
    """One horizontal grouped bar chart; returns (svg elements, height)."""
    bar, gap, label_w, right = 9, 10, 170, 90
    plot_w = width - label_w - right
    peak = max([f.get(e["row"]["headline"], 0) for e in entries for f in e["figures"].values() if f] or [1])
    parts = [f'<text x="10" y="{top + 18}" font-size="15" font-weight="bold">{escape(title)}</text>']
    y = top + 34
    for entry in entries:
        row = entry["row"]
        ways = [w for w in WAYS if entry["figures"].get(w)]
        parts.append(f'<text x="{label_w - 8}" y="{y + bar * len(ways) / 2 + 4}" font-size="12" '
                     f'text-anchor="end">{escape(row["name"])}</text>')
        for way in ways:
            value = entry["figures"][way].get(row["headline"], 0)
            w = max(1.0, plot_w * value / peak)
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 1}" '
                         f'fill="{COLOURS[way]}"><title>{escape(row["name"])} {way}: '
                         f'{fmt(value)} {escape(unit)}</title></rect>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 1}" font-size="9">{fmt(value)}</text>')
            y += bar
        y += gap
    parts.append(f'<line x1="{label_w}" y1="{top + 30}" x2="{label_w}" y2="{y - gap + 2}" stroke="#333"/>')
    parts.append(f'<text x="{label_w}" y="{y + 8}" font-size="11" fill="#555">{escape(unit)}</text>')
    return parts, y + 20 - top


def svg(merged, runs):
    width = 780
    options = runs[0]["options"]
    round_trips = [e for e in merged if e["row"]["kind"] == "round_trip" and not e["row"]["skipped"]]
    streams = [e for e in merged if e["row"]["kind"] == "throughput" and not e["row"]["skipped"]]
    parts, top = [], 10
    parts.append(f'<text x="10" y="{top + 14}" font-size="12" fill="#555">ipckit bench --pin {options["pin"]}: '
                 f'medians of {len(runs)} runs on a 2-vCPU VM</text>')
    top += 24
    legend_x = 10
    for way in ways_measured(merged):
        parts.append(f'<rect x="{legend_x}" y="{top}" width="12" height="12" fill="{COLOURS[way]}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="{top + 10}" font-size="12">{way.replace("_", " ")}</text>')
        legend_x += 145
    top += 20
    elements, height = panel(round_trips, "64-byte round trip, median (lower is better)", "µs", top, width)
    parts += elements
    top += height
    if streams:
        elements, height = panel(streams, "Streaming throughput (higher is better)", "MB/s", top, width)
        parts += elements
        top += height
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + 10}" '
            f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n' +
            "\n".join(parts) + "\n</svg>\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="ipckit bench --json outputs")
    parser.add_argument("--markdown", help="write the table here (default: stdout)")
    parser.add_argument("--svg", help="write the chart here")
    args = parser.parse_args()
    runs = load(args.runs)
    merged = merge(runs)
    table = markdown(merged, runs)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    else:
        sys.stdout.write(table)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(svg(merged, runs))


if __name__ == "__main__":
    main()
