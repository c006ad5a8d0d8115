# SPDX-License-Identifier: Apache-2.0
"""``vla bench``: run every package's performance benchmark and summarise them.

Each package offers ``run(out_dir: Path) -> dict`` in its ``bench`` module (docs/ARCHITECTURE.md,
"Command line"); each writes ``results/bench_<name>.json``. This driver runs them one after the
other with DDS confined to loopback, catches and reports a failing one without stopping the
rest, and writes ``bench_summary.md`` with the headline numbers of each.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_common.ros_env import localhost_env

# benchmark name -> module with run(out_dir) -> dict
BENCHMARKS: dict[str, str] = {
    "transport": "vla_common.bench_transport",
    "sim": "vla_sim.bench",
    "perception": "vla_perception.bench",
    "executor": "vla_executor.bench",
    "policy": "vla_policy.bench",
}


@dataclass
class BenchOutcome:
    """What happened to one benchmark."""

    name: str
    status: str  # ok | failed | missing
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _headline(result: dict[str, Any], limit: int = 8) -> str:
    """A few numeric leaves of a result dict as ``path=value`` text, medians and rates first."""
    leaves: list[tuple[str, float]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            leaves.append((prefix, value))

    walk("", result)
    keys = ("median", "rate", "success", "p95", "_ms", "_s", "_hz")
    ranked = sorted(leaves, key=lambda kv: next((i for i, k in enumerate(keys) if k in kv[0]), len(keys)))
    return ", ".join(f"{k}={v:g}" for k, v in ranked[:limit])


def run_benchmarks(out_dir: Path, only: list[str] | None = None) -> list[BenchOutcome]:
    """Run the selected benchmarks (all by default), each isolated from the others' failures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in only or list(BENCHMARKS):
        module_name = BENCHMARKS[name]
        print(f"[bench] {name}: running {module_name}.run({out_dir}) ...", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                outcomes.append(BenchOutcome(name, "missing", error=f"{module_name} does not exist yet"))
                print(f"[bench] {name}: MISSING ({module_name} not found)", flush=True)
                continue
            outcomes.append(BenchOutcome(name, "failed", error=f"import failed: {exc!r}"))
            print(f"[bench] {name}: FAILED to import: {exc!r}", flush=True)
            continue
        try:
            result = module.run(out_dir)
            result = result if isinstance(result, dict) else {}
            outcome = BenchOutcome(name, "ok", time.perf_counter() - t0, result)
            print(f"[bench] {name}: ok in {outcome.seconds:.1f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 (one failing benchmark must not stop the others)
            tb = traceback.format_exc(limit=4)
            outcome = BenchOutcome(name, "failed", time.perf_counter() - t0, error=f"{exc!r}\n{tb}")
            print(f"[bench] {name}: FAILED after {outcome.seconds:.1f} s: {exc!r}", flush=True)
        outcomes.append(outcome)
    return outcomes


def write_summary(out_dir: Path, outcomes: list[BenchOutcome]) -> Path:
    """Write ``bench_summary.md`` (one table row per benchmark, errors below)."""
    lines = ["# Benchmark summary", "", "Written by `vla bench`; each benchmark's full numbers are in "
             "`bench_<name>.json`.", "", "| benchmark | status | time (s) | headline numbers |",
             "|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.name} | {o.status} | {o.seconds:.1f} | {_headline(o.result) or '-'} |")
    errors = [o for o in outcomes if o.error]
    if errors:
        lines += ["", "## Problems", ""]
        for o in errors:
            lines += [f"### {o.name} ({o.status})", "", "```", o.error.strip(), "```", ""]
    path = out_dir / "bench_summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla bench``; exit 1 when a benchmark failed."""
    ap = argparse.ArgumentParser(prog="vla bench", description="Run the performance benchmarks.")
    ap.add_argument("--out", type=Path, default=Path("results"), help="output directory (default: results)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    args = ap.parse_args(argv)
    only = None
    if args.only:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in BENCHMARKS]
        if unknown:
            print(f"vla bench: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}",
                  file=sys.stderr)
            return 2
    domain = os.environ.get("ROS_DOMAIN_ID", "")
    os.environ.update(localhost_env(domain_id=int(domain) if domain.isdigit() else None))
    outcomes = run_benchmarks(args.out, only)
    path = write_summary(args.out, outcomes)
    print(f"[bench] summary: {path}")
    print(json.dumps({o.name: o.status for o in outcomes}))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
