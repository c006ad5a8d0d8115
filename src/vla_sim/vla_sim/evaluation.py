# SPDX-License-Identifier: Apache-2.0
"""``vla eval``: the benchmark protocol in simulation, with any policy.

Usage::

    vla eval --policy expert --task grasp --split seen --episodes 20
    vla eval --policy random --task place --split unseen --episodes 10 --out results/eval
    vla eval --policy expert --task pickplace --cases src/vla_sim/vla_sim/cases/pickplace_seen.json
    vla eval --policy my_pkg.my_module:make_policy --task grasp --split seen   # a learned policy

Protocol (Secondary Realignment Sec. 4 / A2, but executed in physics): grasp episodes allow <= 8
attempts (a lifted non-target is removed and counts a step); place episodes start with the object
in the gripper and allow one attempt; pick-and-place = grasp (<= 8 attempts) then one place.
Planning steps = policy decisions. Episodes are bounded by step counts, never by wall time.

A policy implements :class:`Policy`: ``act(frames, instruction_text, robot_state)`` returns a
(4, 4) world TCP pose to grasp at (phase ``grasp``) or to release at (phase ``place``), or None.
Policies see only rendered frames, the instruction text and the robot's own state; only a policy
marked ``privileged`` (the expert) is bound to the world and the ground truth.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vla_common.camera import RGBDFrame
from vla_sim import checks, primitives
from vla_sim.instructions import Instruction
from vla_sim.scenes import TASKS, CaseSet, Scene, case_path, make_case

logger = logging.getLogger(__name__)


@runtime_checkable
class Policy(Protocol):
    """What ``vla eval`` needs from a policy."""

    name: str

    def act(
        self, frames: list[RGBDFrame], instruction_text: str, robot_state: dict[str, Any]
    ) -> np.ndarray | None:
        """(4, 4) world TCP pose for the current phase (``robot_state['phase']``), or None."""
        ...


def robot_state(world, phase: str) -> dict[str, Any]:
    """The robot's own state as a policy may see it (no object information)."""
    r = world.robot
    return {
        "phase": phase,
        "joint_names": r.joint_names,
        "q": r.joint_positions(),
        "gripper_width_m": r.gripper_width(),
        "tcp_pose": r.tcp_pose(),
        "sim_time_s": world.sim_time_s,
    }


class RandomPolicy:
    """Baseline: grasp a random object pixel of the top camera, release at a random table point.

    Uses only the frames (depth back-projection) and its own RNG; top-down, random yaw.
    """

    name = "random"
    privileged = False
    needs_frames = True

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act(
        self, frames: list[RGBDFrame], instruction_text: str, robot_state: dict[str, Any]
    ) -> np.ndarray | None:
        """Random top-down grasp on something above the table, or a random release point."""
        top = next((f for f in frames if f.name == "top"), frames[0])
        pts = _backproject(top)  # (N, 3)
        ws = (pts[:, 0] > 0.30) & (pts[:, 0] < 0.75) & (np.abs(pts[:, 1]) < 0.35)
        yaw = self.rng.uniform(-math.pi / 2, math.pi / 2)
        if robot_state["phase"] == "grasp":
            cand = pts[ws & (pts[:, 2] > 0.01)]
            if len(cand) == 0:
                return None
            p = cand[self.rng.integers(len(cand))]
            return _top_down_pose(p[0], p[1], float(np.clip(p[2] - 0.015, 0.022, 0.2)), yaw)
        cand = pts[ws]
        if len(cand) == 0:
            return None
        p = cand[self.rng.integers(len(cand))]
        return _top_down_pose(p[0], p[1], float(p[2]) + 0.10, yaw)


def _backproject(frame: RGBDFrame, stride: int = 4) -> np.ndarray:
    """(N, 3) world points of every ``stride``-th valid depth pixel."""
    d = frame.depth[::stride, ::stride]
    v, u = np.nonzero(np.isfinite(d) & (d > 0))
    z = d[v, u].astype(np.float64)
    K = frame.intrinsics
    u, v = u * stride, v * stride
    pc = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z])  # (3, N)
    return (frame.T_world_cam[:3, :3] @ pc + frame.T_world_cam[:3, 3:4]).T


def _top_down_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    T = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    T[:3, 0] = [c, s, 0.0]
    T[:3, 1] = [s, -c, 0.0]
    T[:3, 2] = [0.0, 0.0, -1.0]
    T[:3, 3] = [x, y, z]
    return T


@dataclass
class EpisodeResult:
    """One episode's outcome (``steps`` = policy decisions)."""

    task: str
    split: str
    seed: int
    instruction: str
    success: bool
    grasp_success: bool | None
    place_success: bool | None
    steps: int
    sim_time_s: float
    wall_s: float
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grasp_attempts: int = 0  # grasp decisions of the episode (1 = first-attempt success when grasp_success)
    motions: list[dict[str, Any]] = field(default_factory=list)  # per executed motion: kind, success, metrics


def _decide(world, policy, instruction: Instruction, phase: str, noise) -> np.ndarray | None:
    frames = world.render(noise) if getattr(policy, "needs_frames", True) else []
    return policy.act(frames, instruction.text, robot_state(world, phase))


def _grasp_phase(
    world,
    policy,
    instruction: Instruction,
    targets: tuple[str, ...],
    noise,
    max_attempts: int,
    res: EpisodeResult,
) -> bool:
    for _ in range(max_attempts):
        T = _decide(world, policy, instruction, "grasp", noise)
        res.steps += 1
        res.grasp_attempts += 1
        if T is None:
            res.notes.append("no grasp proposed")
            continue
        z_before = checks.object_heights(world)
        motion = primitives.execute_grasp(world, np.asarray(T, dtype=np.float64))
        if not motion.ok:
            res.notes.append(f"grasp not executed: {motion.reason}")
            continue
        chk = checks.check_grasp(world, targets, z_before, motion.held)
        if chk.success:
            return True
        for name in chk.wrong:  # a lifted non-target leaves the scene
            world.remove_object(name)
            res.removed.append(name)
        world.set_gripper(True)
        primitives.go_home(world)
    return False


def run_episode(
    world, scene: Scene, policy, noise=None, max_attempts: int = checks.MAX_GRASP_ATTEMPTS
) -> EpisodeResult:
    """Load ``scene`` (with its instruction) into ``world`` and run one episode of its task."""
    if scene.instruction is None:
        raise ValueError(
            "the scene has no instruction; build it with vla_sim.scenes.make_case or a case file"
        )
    t0 = time.perf_counter()
    world.load_scene(scene)
    instruction = Instruction.from_dict(scene.instruction)
    if getattr(policy, "privileged", False):
        policy.bind(world, instruction)
    elif hasattr(policy, "reset"):
        policy.reset()
    res = EpisodeResult(scene.task, scene.split, scene.seed, instruction.text, False, None, None, 0, 0.0, 0.0)
    if scene.task == "grasp":
        res.grasp_success = _grasp_phase(
            world, policy, instruction, instruction.targets, noise, max_attempts, res
        )
        res.success = res.grasp_success
    else:
        held_ok = True
        if scene.task == "pickplace":
            held_ok = _grasp_phase(
                world, policy, instruction, (instruction.target,), noise, max_attempts, res
            )
            res.grasp_success = held_ok
        if held_ok:
            T = _decide(world, policy, instruction, "place", noise)
            res.steps += 1
            placed = False
            if T is None:
                res.notes.append("no place proposed")
            else:
                motion = primitives.execute_place(world, np.asarray(T, dtype=np.float64))
                if not motion.ok:
                    res.notes.append(f"place not executed: {motion.reason}")
                    world.set_gripper(True)
                placed, rest = checks.check_place(world, instruction.target, instruction.region)
                if not rest:
                    res.notes.append("object not at rest")
            res.place_success = placed
        else:
            res.place_success = False
        res.success = bool(held_ok and res.place_success)
    res.sim_time_s = world.sim_time_s
    res.wall_s = time.perf_counter() - t0
    return res


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Success rate and planning steps over episodes."""
    n = len(results)
    succ = [r for r in results if r.success]
    out = {
        "episodes": n,
        "success_rate": len(succ) / n if n else 0.0,
        "mean_steps": float(np.mean([r.steps for r in results])) if n else 0.0,
        "mean_steps_success": float(np.mean([r.steps for r in succ])) if succ else None,
        "mean_sim_time_s": float(np.mean([r.sim_time_s for r in results])) if n else 0.0,
        "mean_wall_s": float(np.mean([r.wall_s for r in results])) if n else 0.0,
    }
    g = [r.grasp_success for r in results if r.grasp_success is not None]
    p = [r.place_success for r in results if r.place_success is not None]
    if g:
        out["grasp_success_rate"] = sum(g) / len(g)
    if p:
        out["place_success_rate"] = sum(p) / len(p)
    return out


def markdown_table(meta: dict[str, Any], summary: dict[str, Any]) -> str:
    """One-row Markdown table of a run."""
    cols = [
        "policy",
        "task",
        "split",
        "episodes",
        "success_rate",
        "mean_steps",
        "mean_steps_success",
        "grasp_success_rate",
        "place_success_rate",
    ]
    row = {**meta, **summary}

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    return (
        "| "
        + " | ".join(cols)
        + " |\n|"
        + "---|" * len(cols)
        + "\n| "
        + " | ".join(fmt(row.get(c)) for c in cols)
        + " |\n"
    )


def make_policy(spec: str, seed: int = 0):
    """``expert``, ``random`` or ``package.module:factory`` (a callable returning a Policy)."""
    if spec == "expert":
        from vla_sim.expert import ExpertPolicy

        return ExpertPolicy()
    if spec == "random":
        return RandomPolicy(seed)
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load policy {spec!r}: {exc}") from exc
        policy = factory()
        if not isinstance(policy, Policy):
            raise ValueError(
                f"{spec!r} returned {type(policy).__name__}, which has no act(frames, text, state)"
            )
        return policy
    raise ValueError(f"unknown policy {spec!r}; use expert, random or package.module:factory")


def evaluate(
    policy,
    task: str,
    split: str,
    episodes: int,
    cases: Path | None = None,
    robot: str = "ur5",
    seed: int = 0,
    render_size: tuple[int, int] = (640, 480),
    noise_sigma_m: float = 0.0,
    renderer: str = "auto",
    progress: bool = True,
    record: Path | None = None,
) -> tuple[list[EpisodeResult], dict[str, Any]]:
    """Run ``episodes`` episodes; scenes from ``cases`` (cycled) or seeds ``seed``.. ``seed+episodes-1``.

    With ``record`` (a folder), each episode is also written as a rerun recording
    (``vla_sim.recorder.EpisodeRecorder``).
    """
    from tqdm import tqdm

    from vla_sim.world import DepthNoise, SimWorld

    noise = DepthNoise(noise_sigma_m, 0.0) if noise_sigma_m > 0 else None
    case_list = CaseSet.load(cases).cases if cases is not None else None
    if case_list is not None and not case_list:
        raise ValueError(f"case file {cases} holds no cases")
    results = []
    with SimWorld(robot=robot, renderer=renderer, seed=seed, render_size=render_size) as world:
        bar = tqdm(
            range(episodes), desc=f"{getattr(policy, 'name', 'policy')} {task}/{split}", disable=not progress
        )
        for i in bar:
            if case_list is not None:
                scene = case_list[i % len(case_list)]
            else:
                scene = make_case(world, task, split, seed + i)
            recorder = _recorder(record, i, scene, world)
            results.append(run_episode(world, scene, recorder.policy(policy) if recorder else policy, noise))
            if recorder is not None:
                recorder.finish(results[-1])
            bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")
    return results, summarize(results)


def _recorder(record: Path | None, index: int, scene: Scene, world):
    """The ``--record`` hook: an EpisodeRecorder for this episode, or None."""
    if record is None:
        return None
    from vla_sim.recorder import EpisodeRecorder

    return EpisodeRecorder(Path(record), index, scene, world)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla eval``."""
    ap = argparse.ArgumentParser(
        prog="vla eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--policy", default="expert", help="expert | random | package.module:factory")
    ap.add_argument("--task", choices=TASKS, default="grasp")
    ap.add_argument("--split", choices=("seen", "unseen", "novel_word"), default="seen")
    ap.add_argument("--episodes", type=int, default=None, help="default: all cases of --cases, else 10")
    ap.add_argument(
        "--cases",
        type=Path,
        default=None,
        help="JSON case file (a Scene or a CaseSet); 'fixed' = the shipped set for task/split",
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default outputs/eval/<date>_<time>)"
    )
    ap.add_argument("--robot", default="ur5", choices=("ur5", "humanoid_arm"))
    ap.add_argument("--seed", type=int, default=0, help="first scene seed when no case file is given")
    ap.add_argument("--render-size", default="640x480", help="WxH of rendered frames, e.g. 320x240")
    ap.add_argument("--noise-sigma", type=float, default=0.0, help="depth noise sigma in metres")
    ap.add_argument("--renderer", choices=("auto", "egl", "tiny"), default="auto")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--record", type=Path, default=None, metavar="DIR",
                    help="write a rerun recording per episode to DIR (open one with: rerun DIR/<file>.rrd)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        w, h = (int(v) for v in args.render_size.lower().split("x"))
    except ValueError:
        ap.error(f"--render-size must look like 640x480, got {args.render_size!r}")
    cases = (
        case_path(args.task, args.split)
        if args.cases is not None and str(args.cases) == "fixed"
        else args.cases
    )
    if cases is not None and not Path(cases).is_file():
        ap.error(f"case file {cases} does not exist")
    episodes = args.episodes
    if episodes is None:
        episodes = len(CaseSet.load(cases).cases) if cases is not None else 10
    if episodes <= 0:
        ap.error("--episodes must be positive")
    try:
        policy = make_policy(args.policy, args.seed)
    except ValueError as exc:
        ap.error(str(exc))
    results, summary = evaluate(
        policy,
        args.task,
        args.split,
        episodes,
        cases,
        args.robot,
        args.seed,
        (w, h),
        args.noise_sigma,
        args.renderer,
        progress=not args.no_progress,
        record=args.record,
    )
    meta = {
        "policy": args.policy,
        "task": args.task,
        "split": args.split,
        "robot": args.robot,
        "cases": str(cases) if cases else None,
        "seed": args.seed,
    }
    out = args.out or Path("outputs/eval") / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"eval_{args.policy.replace(':', '_').replace('.', '_')}_{args.task}_{args.split}"
    (out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "episodes": [asdict(r) for r in results]}, indent=1)
    )
    table = markdown_table(meta, summary)
    (out / f"{stem}.md").write_text(table)
    print(table, end="")
    print(f"saved {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
