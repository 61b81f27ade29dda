#!/usr/bin/env python3
"""One line per kernel from Nsight Compute CSV files (scripts/gpu-ncu.sh writes them).

Takes `ncu --csv --page details` files (one row per launch and metric: "Kernel Name",
"Metric Name", "Metric Unit", "Metric Value") and `ncu --csv --page raw` ones (a header row of
metric names, a row of units, then one row per launch), in any mix; a missing or empty file is
skipped. For every kernel it prints the number of launches and the median over them of: the
duration in microseconds, the SM's and memory's throughput and DRAM's as a share of their peaks,
achieved occupancy, registers per thread, cycles a warp waits per instruction issued, and the
tensor and shared-memory pipes' use (from the raw metrics).

Usage: ncu_summary.py FILE.csv [FILE.csv ...]
"""
import csv
import statistics
import sys
from collections import defaultdict

# (column title, details-page metric name or raw metric name)
COLUMNS = [
    ("us", "Duration"),
    ("SM %", "Compute (SM) Throughput"),
    ("mem %", "Memory Throughput"),
    ("DRAM %", "DRAM Throughput"),
    ("occup %", "Achieved Occupancy"),
    ("regs", "Registers Per Thread"),
    ("cyc/inst", "Warp Cycles Per Issued Instruction"),
    ("tensor %", "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"),
    ("smem %", "l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed"),
]
TO_MICROSECONDS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3,
                   "ms": 1e3, "second": 1e6, "s": 1e6}


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def read(path, values):
    """Adds values[kernel][launch id][metric] = float from one CSV file."""
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except OSError:
        return
    # ncu may print its own lines before the CSV: the table starts at the row naming "ID".
    start = next((i for i, row in enumerate(rows) if row and row[0] == "ID"), None)
    if start is None:
        return
    header = rows[start]
    col = {name: i for i, name in enumerate(header)}
    if "Metric Name" in col:  # The details page: one row per launch and metric.
        for row in rows[start + 1:]:
            value = number(row[col["Metric Value"]])
            if value is None:
                continue
            name = row[col["Metric Name"]]
            if name == "Duration":
                value *= TO_MICROSECONDS.get(row[col["Metric Unit"]], float("nan"))
            values[row[col["Kernel Name"]]][row[col["ID"]]][name] = value
        return
    units = rows[start + 1] if len(rows) > start + 1 else []
    for row in rows[start + 2:]:  # The raw page: a row of units, then one row per launch.
        for name, i in col.items():
            if name in ("ID", "Kernel Name") or i >= len(row):
                continue
            value = number(row[i])
            if value is None:
                continue
            if name == "gpu__time_duration.sum" and i < len(units):
                value *= TO_MICROSECONDS.get(units[i], float("nan"))
            values[row[col["Kernel Name"]]][row[col["ID"]]][name] = value


def main(paths):
    values = defaultdict(lambda: defaultdict(dict))
    for path in paths:
        read(path, values)
    if not values:
        print("ncu_summary.py: no kernel figures in " + " ".join(paths))
        return 1
    width = max(len(name) for name in values)
    print(f"{'kernel':<{width}}  {'launches':>8}" + "".join(f"  {t:>9}" for t, _ in COLUMNS))
    for kernel in sorted(values):
        launches = values[kernel]
        cells = []
        for _, metric in COLUMNS:
            seen = [m[metric] for m in launches.values() if metric in m]
            cells.append(f"{statistics.median(seen):9.1f}" if seen else f"{'-':>9}")
        print(f"{kernel:<{width}}  {len(launches):>8}" + "".join(f"  {c}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
