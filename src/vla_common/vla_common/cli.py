# SPDX-License-Identifier: Apache-2.0
"""The ``vla`` command: one entry point that dispatches to each package's ``main(argv) -> int``.

Subcommand modules are imported only when their command runs, so ``vla --help`` and ``vla say``
stay fast and do not load torch, PyBullet or open3d (docs/ARCHITECTURE.md, "Command line").
"""

from __future__ import annotations

import importlib
import sys

# command -> (module with main(argv) -> int, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vla_common.demo", "run the simulated robot end to end on one instruction"),
    "launch": ("vla_common.launcher", "start a node graph (sim, robot, test) as separate processes"),
    "say": ("vla_common.say", "publish one instruction to a running graph (--wait to follow it)"),
    "collect": ("vla_policy.collect", "collect expert demonstrations in simulation"),
    "train": ("vla_policy.train", "train the alignment policy"),
    "train-clip": ("vla_perception.train_clip", "train the compact CLIP feature extractor"),
    "grasp-prior": ("vla_policy.grasp_prior", "label, train or evaluate the learned grasp prior"),
    "eval": ("vla_sim.evaluation", "run the benchmark protocol in simulation"),
    "bench": ("vla_common.bench", "run the performance benchmarks (writes results/bench_*.json)"),
    "calibrate": ("vla_perception.calibrate", "camera extrinsics from a ChArUco board -> rig YAML"),
    "faults": ("vla_sim.faults", "fault and bad-input scenarios on the sim graph (results/faults.md)"),
}


def usage() -> str:
    """The text of ``vla --help``."""
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: vla <command> [options]   (vla <command> --help for its options)", "", "commands:"]
    lines += [f"  {cmd.ljust(width)}  {desc}" for cmd, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``vla <command> ...``; returns the command's exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"vla: unknown command {cmd!r}; choose one of: {', '.join(COMMANDS)} (see vla --help)",
              file=sys.stderr)
        return 2
    module_name = COMMANDS[cmd][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"vla {cmd}: module {module_name} is not installed in this environment "
                  f"({exc}); reinstall with `pip install -e .` or `colcon build`", file=sys.stderr)
            return 2
        raise
    rc = module.main(rest)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
