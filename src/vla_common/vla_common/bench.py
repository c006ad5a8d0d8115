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
import subprocess
import sys
import tempfile
import time
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
    "response": "vla_common.bench_response",  # the running sim graph: instruction -> first motion command
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


MISSING_EXIT = 3  # child exit code: the benchmark's module does not exist


def _child(module_name: str, out_dir: Path, result_path: Path) -> int:
    """Run one benchmark module in this (child) process and write its result dict as JSON."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return MISSING_EXIT
        raise
    result = module.run(out_dir)
    result_path.write_text(json.dumps(result if isinstance(result, dict) else {}, default=str))
    return 0


def run_benchmarks(out_dir: Path, only: list[str] | None = None) -> list[BenchOutcome]:
    """Run the selected benchmarks (all by default), each in its own process.

    Separate processes keep one benchmark's failures, crashes and leftovers from the next (a
    PyBullet EGL context closed in a process that then runs torch has segfaulted here).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in only or list(BENCHMARKS):
        module_name = BENCHMARKS[name]
        print(f"[bench] {name}: running {module_name}.run({out_dir}) ...", flush=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result_path = Path(tmp) / "result.json"
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
            proc = subprocess.Popen([sys.executable, "-m", "vla_common.bench", "--child", module_name,
                                     "--out", str(out_dir), "--result", str(result_path)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace")
            tail: list[str] = []
            for line in proc.stdout:  # forward the benchmark's output, keep its end for the summary
                sys.stdout.write(line)
                tail = (tail + [line])[-25:]
            code = proc.wait()
            seconds = time.perf_counter() - t0
            if code == MISSING_EXIT:
                outcome = BenchOutcome(name, "missing", seconds, error=f"{module_name} does not exist yet")
            elif code != 0 or not result_path.is_file():
                outcome = BenchOutcome(name, "failed", seconds,
                                       error=f"benchmark process exited with code {code}:\n" + "".join(tail))
            else:
                outcome = BenchOutcome(name, "ok", seconds, json.loads(result_path.read_text()))
        print(f"[bench] {name}: {outcome.status.upper() if outcome.status != 'ok' else 'ok'} "
              f"in {outcome.seconds:.1f} s", flush=True)
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
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: module to run in this process
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.out, args.result)
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
