"""Renders the cache suite's CSV output as PNG charts for benches/REPORT.md.

    benches/charts.sh [CONTENTION_CSV] [HIT_RATIO_CSV]

* CONTENTION_CSV (`workload,threads,map,mops`, from `cargo run --release -p cache --example
  contention -- --header`) becomes benches/contention.png: one panel per workload, millions of
  operations per second against threads, one line per map.
* HIT_RATIO_CSV (`trace,capacity,policy,hit_ratio`, from `cargo run --release -p cache --example
  hit_ratio -- --header`) becomes benches/hit-ratio.png: one panel per trace, hit ratio against
  capacity (log scale), one line per policy, Bélády's optimum dashed.
"""

import csv
import math
import sys
from collections import OrderedDict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# One colour per map or policy in every chart.
COLOURS = {
    "epoch": "tab:blue",
    "dashmap": "tab:orange",
    "papaya": "tab:green",
    "scc": "tab:red",
    "moka": "tab:purple",
    "quick_cache": "tab:brown",
    "optimal": "black",
}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grid(n):
    cols = min(3, n)
    return math.ceil(n / cols), cols


def panels(rows, panel_key, x_key, series_key, y_key):
    """{panel: {series: [(x, y)]}} in the order of first appearance."""
    out = OrderedDict()
    for r in rows:
        series = out.setdefault(r[panel_key], OrderedDict()).setdefault(r[series_key], [])
        series.append((float(r[x_key]), float(r[y_key])))
    return out


def chart(path, out, panel, x, y, title, xlabel, ylabel, log_x=False, ylim=None):
    """One panel per `panel` value, `y` against `x`, one line per map or policy."""
    rows = read(path)
    data = panels(rows, panel, x, "map" if "map" in rows[0] else "policy", y)
    nrows, ncols = grid(len(data))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (name, series) in zip(axes.flat, data.items()):
        for line, points in series.items():
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, "--" if line == "optimal" else "-", marker="o", label=line,
                    color=COLOURS.get(line), linewidth=2.2 if line == "epoch" else 1.2)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_x:
            ax.set_xscale("log")
        else:
            ax.set_xticks(sorted({x for pts in series.values() for x, _ in pts}))
        ax.set_ylim(*(ylim or (0, None)))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{title} ({Path(path).name})")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main():
    here = Path(__file__).resolve().parent
    contention_csv = sys.argv[1] if len(sys.argv) > 1 else None
    hit_csv = sys.argv[2] if len(sys.argv) > 2 else None
    if contention_csv is None:
        contention_csv = str(sorted(here.glob("contention-*.csv"))[-1])
    if hit_csv is None:
        hit_csv = str(sorted(here.glob("hit-ratio-*.csv"))[-1])
    chart(contention_csv, here / "contention.png", "workload", "threads", "mops",
          "Map throughput under contention", "threads", "Mops/s")
    chart(hit_csv, here / "hit-ratio.png", "trace", "capacity", "hit_ratio",
          "Hit ratio against Bélády's optimum", "capacity (entries)", "hit ratio",
          log_x=True, ylim=(0, 1))


if __name__ == "__main__":
    main()
