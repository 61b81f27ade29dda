#!/usr/bin/env python3
"""Draws a run's loss, tokens/s and power from its metrics.jsonl to a PNG.

    scripts/plot_metrics.py runs/quickstart/metrics.jsonl [-o runs/quickstart/metrics.png]

Three panels against the step: the training loss (and the validation loss of the
evaluations), tokens per second, and the job's power in watts (GPU + CPU packages, where
they were measured; the panel says so when they were not). A resumed run repeats the steps
between its last checkpoint and the interruption: the last record of each step is kept
(docs/metrics.md). Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"plot_metrics: {e} (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
    sys.exit(2)


def read(path):
    """The train and eval records, each step's last, in step order."""
    train, evals = {}, {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_metrics: {path}:{number}: not JSON ({e})")
            kind = record.get("kind")
            if kind == "train":
                train[record["step"]] = record
            elif kind == "eval":
                evals[record["step"]] = record
    if not train:
        sys.exit(f"plot_metrics: {path} holds no training step")
    return [train[s] for s in sorted(train)], [evals[s] for s in sorted(evals)]


def series(records, field):
    points = [(r["step"], r[field]) for r in records if r.get(field) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("metrics", help="a run's metrics.jsonl")
    parser.add_argument("-o", "--out", help="the PNG (default: metrics.png beside the input)")
    args = parser.parse_args()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.metrics)), "metrics.png")
    train, evals = read(args.metrics)

    fig, (loss, speed, power) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    loss.plot(*series(train, "loss"), label="train")
    if evals:
        loss.plot(*series(evals, "val_loss"), "o-", label="validation")
    loss.set_ylabel("loss")
    loss.legend()
    loss.grid(alpha=0.3)

    speed.plot(*series(train, "tokens_per_s"))
    speed.set_ylabel("tokens/s")
    speed.grid(alpha=0.3)

    steps, watts = series(train, "watts")
    if watts:
        power.plot(steps, watts, label="total")
        for field, label in (("gpu_watts", "GPU"), ("cpu_watts", "CPU packages")):
            s, w = series(train, field)
            if w:
                power.plot(s, w, label=label)
        power.legend()
    else:
        power.text(0.5, 0.5, "power not measured on this machine (no NVML, no readable RAPL)",
                   ha="center", va="center", transform=power.transAxes)
    power.set_ylabel("W")
    power.set_xlabel("step")
    power.grid(alpha=0.3)

    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(args.metrics))) or args.metrics)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot_metrics: {len(train)} steps, {len(evals)} evaluations -> {out}")


if __name__ == "__main__":
    main()
