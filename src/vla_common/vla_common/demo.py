# SPDX-License-Identifier: Apache-2.0
"""``vla demo "<instruction>"``: the whole stack on a simulated robot, driven by one instruction.

Starts the ``sim`` node graph (sim bridge, perception, policy, executor) as separate processes with
DDS confined to this machine, waits until the simulated cameras are publishing and the policy is
listening, sends the instruction on ``/vla/instruction``, prints every ``/vla/status`` event, and
stops when the policy ends the task (``task_succeeded`` / ``task_failed``). It then writes what
happened to ``--save``: ``summary.json`` (events, outcome, which object the simulator saw lifted,
the scene's objects and the verdict),
``start.png`` / ``end.png`` (top camera) and ``episode.gif``.

Usage::

    vla demo "pick up the red mug"
    vla demo "grasp something to drink from" --seed 3 --save results/demo
    vla demo "put the lemon left of the bowl" --task pickplace

The demo reads ``object_lifted`` events of the sim bridge (privileged simulator knowledge) only to
tell the person which object actually went up; no node of the graph uses them. It prints the
simulator's verdict first ("SUCCESS: lifted the red mug", "WRONG OBJECT: lifted the red cube,
asked for the red mug", ``vla_sim.checks.judge_grasp``) and exits 0 only when that verdict is
right; the policy's own report follows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.graph import ROBOTS, graph
from vla_common.language import NotUnderstood, parse_instruction
from vla_common.ros_env import apply_localhost_env
from vla_common.status import parse_status

END_EVENTS = ("task_succeeded", "task_failed", "instruction_not_understood", "instruction_refused")


@dataclass
class DemoResult:
    """What one demo run observed."""

    instruction: str
    outcome: str = "timeout"                 # task_succeeded | task_failed | timeout | node_died
    detail: str = ""
    lifted: list[str] = field(default_factory=list)   # objects the simulator saw lifted >= 10 cm
    scene_objects: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    verdict: str = ""          # the simulator's judgement (vla_sim.checks.judge_grasp), printed first
    verdict_ok: bool | None = None
    targets: list[str] = field(default_factory=list)  # scene objects the instruction describes

    @property
    def succeeded(self) -> bool:
        """True when the simulator judged the episode right (else: the policy reported task_succeeded)."""
        return self.verdict_ok if self.verdict_ok is not None else self.outcome == "task_succeeded"


class _Driver:
    """The demo's own rclpy node: sends the instruction, records status events and top-camera frames."""

    def __init__(self, instruction: str, max_frames: int = 120) -> None:
        import rclpy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from vla_common.conversions import image_to_rgb
        from vla_common.qos import EVENT_QOS, SENSOR_QOS

        self._image_to_rgb = image_to_rgb
        self.node = rclpy.create_node("vla_demo")
        self.instruction = instruction
        self.events: list[dict[str, Any]] = []
        self.frames: list[np.ndarray] = []
        self.max_frames = max_frames
        self.lock = threading.Lock()
        self.pub = self.node.create_publisher(String, "/vla/instruction", EVENT_QOS)
        self.node.create_subscription(String, "/vla/status", self._on_status, EVENT_QOS)
        self.node.create_subscription(Image, "/cameras/top/color/image_raw", self._on_image, SENSOR_QOS)
        self._String = String

    def _on_status(self, msg: Any) -> None:
        try:
            event = parse_status(msg.data)
        except ValueError:
            return
        with self.lock:
            self.events.append(event)
        fields = {k: v for k, v in event.items() if k not in ("node", "event", "level", "detail")}
        extra = f"  {json.dumps(fields)[:200]}" if fields else ""
        print(f"[status] {event['node']}: {event['event']} ({event['level']}): {event['detail']}{extra}",
              flush=True)

    def _on_image(self, msg: Any) -> None:
        try:
            rgb = self._image_to_rgb(msg)
        except ValueError:
            return
        with self.lock:
            if len(self.frames) >= self.max_frames:  # keep the first and thin out the rest
                self.frames = self.frames[:1] + self.frames[2::2]
            self.frames.append(rgb[::2, ::2].copy())

    def has(self, node: str | None, event: str) -> bool:
        with self.lock:
            return any(e["event"] == event and (node is None or e["node"] == node) for e in self.events)

    def send(self) -> None:
        self.pub.publish(self._String(data=self.instruction))


def _save(result: DemoResult, frames: list[np.ndarray], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.__dict__.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if not frames:
        return
    from PIL import Image

    Image.fromarray(frames[0]).save(out / "start.png")
    Image.fromarray(frames[-1]).save(out / "end.png")
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(out / "episode.gif", save_all=True, append_images=imgs[1:], duration=250, loop=0)


def _scene_objects(task: str, split: str, seed: int, case_file: str, case_index: int) -> list[str]:
    """The objects of the scene the sim bridge loads for these arguments (seeded: no physics needed)."""
    from vla_sim.scenes import CaseSet, make_scene

    if case_file:
        cases = CaseSet.load(Path(case_file)).cases
        scene = cases[case_index % len(cases)]
    else:
        scene = make_scene(task, split, seed)
    held = getattr(scene, "held", None)
    return list(scene.names) + ([held] if held and held not in scene.names else [])


def run_demo(instruction: str, robot: str = "ur5", task: str = "grasp", split: str = "seen", seed: int = 0,
             case_file: str = "", case_index: int = 0, timeout_s: float = 900.0, save: Path | None = None,
             extra_params: dict[str, dict[str, Any]] | None = None, quiet_nodes: bool = False) -> DemoResult:
    """Run the sim graph on one scene and one instruction; see the module docstring.

    Args:
        instruction: what the person says.
        robot: ``ur5`` or ``humanoid_arm``.
        task: scene task for the sim bridge (grasp, place, pickplace).
        split: object split (seen, unseen, novel_word).
        seed: scene seed.
        case_file: JSON case file to load the scene from instead ("" = use task/split/seed).
        case_index: which case of ``case_file``.
        timeout_s: wall-clock safety net for the whole run (the episode itself is bounded by the
            policy's attempt count, not by time).
        save: folder for summary.json and pictures (None: save nothing).
        extra_params: per-node parameter overrides ``{node_name: {param: value}}``.
        quiet_nodes: do not forward the nodes' own log lines.
    """
    import rclpy

    from vla_common.launcher import Launcher

    saved_env = dict(os.environ)  # restored on return: callers (tests) keep their own ROS domain
    apply_localhost_env()
    nodes = graph("sim", robot=robot)
    for node in nodes:
        if node.name == "sim_bridge":
            node.parameters.update({"task": task, "split": split, "seed": int(seed),
                                    "case_file": str(case_file), "case_index": int(case_index)})
        node.parameters.update((extra_params or {}).get(node.name, {}))
    result = DemoResult(instruction=instruction)
    t0 = time.monotonic()
    out = open("/dev/null", "w") if quiet_nodes else None  # noqa: SIM115 (closed below)
    launcher = Launcher(nodes, out=out)
    rclpy.init()
    driver = _Driver(instruction)
    try:
        launcher.start()
        stage = "waiting for the graph"
        print(f"[demo] {stage}: sim bridge scene + first feature cloud", flush=True)
        sent = False
        while time.monotonic() - t0 < timeout_s:
            rclpy.spin_once(driver.node, timeout_sec=0.1)
            died = launcher.poll()
            if died is not None:
                result.outcome, result.detail = "node_died", f"node '{died[0]}' exited with code {died[1]}"
                break
            ready = driver.has("perception", "cloud_published") and driver.pub.get_subscription_count() > 0
            if not sent and ready:
                print(f"[demo] sending instruction: {instruction!r}", flush=True)
                driver.send()
                sent = True
            ends = [e for e in list(driver.events) if e["event"] in END_EVENTS]
            if ends:
                result.outcome, result.detail = ends[-1]["event"], ends[-1].get("detail", "")
                # give the sim bridge a moment to report what is held
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    rclpy.spin_once(driver.node, timeout_sec=0.1)
                break
        else:
            result.detail = f"no task result within {timeout_s:.0f} s"
    finally:
        result.wall_s = time.monotonic() - t0
        with driver.lock:
            result.events = list(driver.events)
            frames = list(driver.frames)
        for e in result.events:
            if e["event"] == "object_lifted" and e.get("object") not in result.lifted:
                result.lifted.append(e.get("object"))
            if e["event"] == "scene_loaded":
                result.scene_objects = list(e.get("objects", []))
        if not result.scene_objects:  # scene_loaded is volatile: a driver that joined late missed it
            result.scene_objects = _scene_objects(task, split, seed, case_file, case_index)
        if result.scene_objects and result.outcome != "node_died":
            from vla_sim.checks import judge_grasp  # sim tooling: the person's view, not the robot's

            refusals = [e for e in result.events if e["event"] in (
                "target_not_found", "instruction_not_understood", "instruction_refused")]
            refused = refusals[-1].get("detail", refusals[-1]["event"]) if refusals else ""
            v = judge_grasp(instruction, result.scene_objects, result.lifted, refused)
            result.verdict, result.verdict_ok, result.targets = v.sentence, v.ok, v.targets
            try:
                places = parse_instruction(instruction).kind != "grasp"
            except NotUnderstood:
                places = False
            if places:  # events tell what went up, not where it came to rest
                result.verdict += " (placement not judged by the demo; `vla eval` checks it in physics)"
        driver.node.destroy_node()
        rclpy.try_shutdown()
        launcher.stop()
        if out is not None:
            out.close()
        os.environ.clear()
        os.environ.update(saved_env)
    if save is not None:
        _save(result, frames, Path(save))
    return result


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``vla demo``."""
    p = argparse.ArgumentParser(prog="vla demo", description=__doc__.split("\n\n")[0])
    p.add_argument("instruction", help='what to do, e.g. "pick up the red mug"')
    p.add_argument("--robot", default="ur5", choices=ROBOTS)
    p.add_argument("--task", default="grasp", choices=("grasp", "place", "pickplace"))
    p.add_argument("--split", default="seen", choices=("seen", "unseen", "novel_word"))
    p.add_argument("--seed", type=int, default=0, help="scene seed (same seed, same scene)")
    p.add_argument("--case-file", default="", help="JSON case file with scenes (overrides --seed)")
    p.add_argument("--case-index", type=int, default=0)
    p.add_argument("--timeout-s", type=float, default=900.0, help="wall-clock safety net for the run")
    p.add_argument("--save", type=Path, default=Path("results/demo"), help="folder for summary and pictures")
    p.add_argument("--quiet-nodes", action="store_true", help="hide the nodes' own log lines")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla demo``; exit 0 when the simulator judged the episode right."""
    args = build_parser().parse_args(argv)
    result = run_demo(args.instruction, robot=args.robot, task=args.task, split=args.split, seed=args.seed,
                      case_file=args.case_file, case_index=args.case_index, timeout_s=args.timeout_s,
                      save=args.save, quiet_nodes=args.quiet_nodes)
    if result.verdict:
        print(f"\n[demo] {result.verdict}")
    print(f"[demo] instruction: {result.instruction!r}")
    if result.scene_objects:
        print(f"[demo] scene objects: {', '.join(result.scene_objects)}")
    print(f"[demo] policy's report: {result.outcome} ({result.detail})")
    print(f"[demo] objects lifted (simulator's view): {', '.join(result.lifted) or 'none'}")
    print(f"[demo] wall time {result.wall_s:.1f} s; pictures and summary in {args.save}/")
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
