# SPDX-License-Identifier: Apache-2.0
"""Response-time benchmark of the running robot (``vla bench --only response`` calls :func:`run`).

How long does the robot take to answer? The whole ``sim`` graph (sim bridge, perception, policy,
executor) runs as separate processes over DDS on loopback, exactly as ``vla launch sim`` / ``vla
demo`` start it. Once it is up (simulated clock running, a feature cloud published, the executor
answering, the action server ready), this process, an outside rclpy client like any user's, runs
``tasks`` grasp tasks: for each it reloads a seeded scene (``/sim/load_scene``), waits for a cloud of
the new scene, waits a little more (a different phase of perception's periodic cloud each time, so
the tasks do not all arrive just after a cloud), sends the scene's own example instruction as a
``/vla/manipulate`` goal and measures the wall time from sending it to the first motion command
the robot receives: the first ``/arm_controller/joint_trajectory`` message (the headline) and the
first ``/gripper_controller/command``. It then cancels the goal (the arm stops; the scene is
reloaded for the next task).

Where the time goes comes from the status events seen on ``/vla/status`` (wall time of arrival at
this client, relative to the send): the policy's ``instruction_received``, perception's
``cloud_published`` (its own CLIP / fusion timings), the policy's ``grasp_selected`` (its decision
timings), the executor's ``motion_started`` (its planning timings), and the simulated time that
passed (the nodes' timers run on the simulator's ``/clock``).

Writes ``results/bench_response.json`` (every task, its phases, median / p90) and
``results/bench_response.md`` (a table).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_common import topics
from vla_common.graph import graph
from vla_common.ros_env import apply_localhost_env

FIRST_SEED = 0
STARTUP_TIMEOUT_S = 600.0
MOTION_TIMEOUT_S = 90.0


@dataclass
class TaskTiming:
    """One task: what was sent and when (wall seconds after the send) each thing was seen."""

    seed: int
    instruction: str
    phase_delay_s: float                    # wait after the scene's first cloud before sending
    first_trajectory_s: float | None = None  # first /arm_controller/joint_trajectory (headline)
    first_gripper_s: float | None = None     # first /gripper_controller/command
    goal_accepted_s: float | None = None
    events_s: dict[str, float] = field(default_factory=dict)  # first event of each kind after the send
    sim_s: float | None = None               # simulated time from the send to the first trajectory
    cloud_timings_ms: dict[str, float] = field(default_factory=dict)   # the decision's cloud
    decide_timings_ms: dict[str, float] = field(default_factory=dict)  # grasp_selected timings_ms
    decided_cloud_age_s: float | None = None  # grasp_selected cloud_age_s: request minus cloud stamp (sim s)
    planning_s: dict[str, float] = field(default_factory=dict)         # motion_started planning
    clouds: list[tuple[float, float]] = field(default_factory=list)  # (wall s, stamp - send clock s)
    outcome: str = ""                        # moved | no motion: <last policy event>


class _Client:
    """The outside process: an action client plus watchers of status, commands and the clock."""

    def __init__(self, ctx: Any) -> None:
        import rclpy
        from rclpy.action import ActionClient
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import Float64, String
        from trajectory_msgs.msg import JointTrajectory

        from vla_common.qos import EVENT_QOS, RELIABLE_QOS
        from vla_interfaces.action import Manipulate

        self.Manipulate, self.String = Manipulate, String
        self.node = rclpy.create_node("vla_bench_response", context=ctx)
        self.ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.action = ActionClient(self.node, Manipulate, topics.MANIPULATE)
        self.scene_pub = self.node.create_publisher(String, topics.SIM_LOAD_SCENE, RELIABLE_QOS)
        self.events: list[tuple[float, dict[str, Any]]] = []   # (wall monotonic, event)
        self.trajectories: list[tuple[float, int]] = []         # (wall, number of points)
        self.gripper: list[float] = []
        self.clock_s = 0.0
        self.node.create_subscription(String, topics.STATUS, self._on_status, EVENT_QOS)
        self.node.create_subscription(JointTrajectory, topics.ARM_TRAJECTORY,
                                      lambda m: self.trajectories.append((time.monotonic(), len(m.points))),
                                      RELIABLE_QOS)
        self.node.create_subscription(Float64, topics.GRIPPER_COMMAND,
                                      lambda m: self.gripper.append(time.monotonic()), RELIABLE_QOS)
        self.node.create_subscription(Clock, topics.CLOCK, self._on_clock, 10)

    def _on_status(self, msg: Any) -> None:
        try:
            ev = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if isinstance(ev, dict):
            self.events.append((time.monotonic(), ev))

    def _on_clock(self, msg: Any) -> None:
        self.clock_s = msg.clock.sec + 1e-9 * msg.clock.nanosec

    def spin_until(self, cond: Any, timeout_s: float, launcher: Any = None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.ex.spin_once(timeout_sec=0.02)
            if launcher is not None:
                died = launcher.poll()
                if died is not None:
                    raise RuntimeError(f"node {died[0]} exited with code {died[1]}")
            if cond():
                return True
        return False

    def find(self, since: float, node: str | None, event: str) -> dict[str, Any] | None:
        for t, ev in self.events:
            if t >= since and ev.get("event") == event and (node is None or ev.get("node") == node):
                return ev
        return None


def _p90(values: list[float]) -> float:
    """90th percentile by nearest rank (an infinite value, a task that never moved, stays infinite)."""
    a = np.sort(np.asarray(values, dtype=np.float64))
    return float(a[max(0, int(np.ceil(0.9 * a.size)) - 1)])


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {"median": float(np.median(a)), "p90": _p90(values), "min": float(a.min()),
            "max": float(a.max()), "n": int(a.size)}


def _ready(c: _Client, launcher: Any, timeout_s: float) -> float:
    """Wait until the graph answers: clock, a feature cloud, the action server, the executor."""
    t0 = time.monotonic()
    ok = c.spin_until(lambda: c.clock_s > 0.5 and c.action.server_is_ready()
                      and c.find(0.0, "perception", "cloud_published") is not None, timeout_s, launcher)
    if not ok:
        raise RuntimeError(f"the graph did not come up in {timeout_s:.0f} s: "
                           f"{[ev.get('event') for _, ev in c.events][-20:]}")
    return time.monotonic() - t0


def _one_task(c: _Client, launcher: Any, seed: int, delay_s: float) -> TaskTiming:
    """Reload scene ``seed``, send its example instruction as a goal, time the first motion command."""
    mark = time.monotonic()
    c.scene_pub.publish(c.String(data=json.dumps({"task": "grasp", "split": "seen", "seed": seed})))
    if not c.spin_until(lambda: c.find(mark, "sim_bridge", "scene_loaded") is not None, 60.0, launcher):
        raise RuntimeError(f"scene seed {seed} was not loaded within 60 s")
    loaded = c.find(mark, "sim_bridge", "scene_loaded")
    loaded_clock = c.clock_s
    instruction = str(loaded.get("example_instruction") or "pick up the red mug")
    # a cloud made from frames of the new scene, then a phase delay
    fresh = lambda: any(t >= mark and ev.get("event") == "cloud_published"  # noqa: E731
                        and float(ev.get("stamp_s", 0.0)) > loaded_clock for t, ev in c.events)
    if not c.spin_until(fresh, 60.0, launcher):
        raise RuntimeError(f"no feature cloud of scene {seed} within 60 s")
    c.spin_until(lambda: False, delay_s)
    timing = TaskTiming(seed=seed, instruction=instruction, phase_delay_s=delay_s)
    n_traj, n_grip = len(c.trajectories), len(c.gripper)
    t_send, clock_send = time.monotonic(), c.clock_s
    goal = c.action.send_goal_async(c.Manipulate.Goal(instruction=instruction))
    goal.add_done_callback(lambda _f: setattr(timing, "goal_accepted_s", time.monotonic() - t_send))
    ended = lambda: any(t >= t_send and ev.get("node") == "policy"  # noqa: E731
                        and ev.get("event") in ("task_succeeded", "task_failed") for t, ev in c.events)
    c.spin_until(lambda: len(c.trajectories) > n_traj or ended(), MOTION_TIMEOUT_S, launcher)
    if len(c.trajectories) > n_traj:
        timing.first_trajectory_s = c.trajectories[n_traj][0] - t_send
        timing.sim_s = c.clock_s - clock_send
        timing.outcome = "moved"
    else:
        last = [ev for t, ev in c.events if t >= t_send and ev.get("node") == "policy"]
        timing.outcome = f"no motion: {last[-1].get('event') if last else 'no policy event'}"
    if len(c.gripper) > n_grip:
        timing.first_gripper_s = c.gripper[n_grip] - t_send
    for t, ev in c.events:
        name = f"{ev.get('node')}.{ev.get('event')}"
        if t >= t_send and name not in timing.events_s:
            timing.events_s[name] = round(t - t_send, 4)
    timing.clouds = [(round(t - t_send, 4), round(float(ev.get("stamp_s", 0.0)) - clock_send, 4))
                     for t, ev in c.events if t >= t_send and ev.get("event") == "cloud_published"
                     and (timing.first_trajectory_s is None or t - t_send <= timing.first_trajectory_s)]
    sel = c.find(t_send, "policy", "grasp_selected")
    if sel is not None:
        timing.decide_timings_ms = dict(sel.get("timings_ms") or {})
        timing.decided_cloud_age_s = sel.get("cloud_age_s")
        clouds = [ev for t, ev in c.events if t_send <= t and ev.get("event") == "cloud_published"]
        if clouds:  # the last cloud before the decision was the one it used
            t_sel = next(t for t, ev in c.events if ev is sel)
            used = [ev for t, ev in c.events if t_send <= t <= t_sel and ev.get("event") == "cloud_published"]
            timing.cloud_timings_ms = dict((used or clouds)[-1].get("timings_ms") or {})
    started = c.find(t_send, "executor", "motion_started")
    if started is not None:
        timing.planning_s = dict(started.get("planning") or {})
    # end the task: cancel the goal (the arm stops), wait for the result and for the executor to
    # report the stopped motion (the next task's instruction then follows a still arm, as a person's would)
    t_cancel = time.monotonic()
    if goal.done() or c.spin_until(goal.done, 10.0, launcher):
        gh = goal.result()
        if gh.accepted:
            result = gh.get_result_async()
            gh.cancel_goal_async()
            c.spin_until(result.done, 30.0, launcher)
    c.spin_until(ended, 10.0, launcher)
    if timing.outcome == "moved":
        c.spin_until(lambda: c.find(t_cancel, "executor", "motion_done") is not None
                     or c.find(t_cancel, "executor", "motion_refused") is not None, 10.0, launcher)
    return timing


def run(out_dir: Path, tasks: int = 10) -> dict[str, Any]:
    """Start the sim graph, time ``tasks`` instructions, write ``bench_response.{json,md}``."""
    import rclpy

    from vla_common.launcher import Launcher

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if "ROS_AUTOMATIC_DISCOVERY_RANGE" not in os.environ:
        apply_localhost_env()
    nodes = graph("sim", robot="ur5")
    log_path = out_dir / "bench_response_nodes.log"
    log = open(log_path, "w")  # noqa: SIM115 (closed below)
    launcher = Launcher(nodes, out=log)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    c = _Client(ctx)
    timings: list[TaskTiming] = []
    t_start = time.monotonic()
    try:
        launcher.start()
        startup_s = _ready(c, launcher, STARTUP_TIMEOUT_S)
        print(f"[bench response] graph up in {startup_s:.1f} s", flush=True)
        for i in range(tasks):
            delay = 0.1 + 0.9 * i / max(1, tasks)  # perception publishes at 1 Hz: spread the phase
            t = _one_task(c, launcher, FIRST_SEED + i, delay)
            timings.append(t)
            print(f"[bench response] task {i + 1}/{tasks} seed {t.seed} {t.instruction!r}: {t.outcome}, "
                  f"first trajectory {_fmt(t.first_trajectory_s)} s, "
                  f"events {t.events_s}", flush=True)
    finally:
        c.node.destroy_node()
        rclpy.shutdown(context=ctx)
        launcher.stop()
        log.close()
    moved = [t.first_trajectory_s for t in timings if t.first_trajectory_s is not None]
    # a task that never moved counts as infinitely slow in the median (it is not dropped)
    all_s = [t.first_trajectory_s if t.first_trajectory_s is not None else float("inf") for t in timings]

    def phase(name: str) -> dict[str, float]:
        return _stats([t.events_s[name] for t in timings if name in t.events_s])

    result: dict[str, Any] = {
        "what": "wall time from sending an instruction (/vla/manipulate goal, outside process) to the first "
                "/arm_controller/joint_trajectory message, sim graph on DDS loopback",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "startup_s": round(startup_s, 2),
        "tasks": len(timings),
        "moved": len(moved),
        "first_trajectory_s": {**_stats(moved), "median_all": float(np.median(all_s)) if all_s else None,
                               "p90_all": _p90(all_s) if all_s else None},
        "first_gripper_s": _stats([t.first_gripper_s for t in timings if t.first_gripper_s is not None]),
        "phases_s": {name: phase(name) for name in (
            "policy.instruction_received", "perception.cloud_published", "policy.grasp_selected",
            "executor.motion_started")},
        "sim_s": _stats([t.sim_s for t in timings if t.sim_s is not None]),
        "target_median_s": 1.0,
        "per_task": [asdict(t) for t in timings],
        "wall_s": round(time.monotonic() - t_start, 1),
    }
    result["meets_target"] = bool(all_s and np.median(all_s) <= 1.0)
    (out_dir / "bench_response.json").write_text(json.dumps(result, indent=1, default=str))
    _write_md(out_dir / "bench_response.md", result, timings)
    return result


def _write_md(path: Path, result: dict[str, Any], timings: list[TaskTiming]) -> None:
    """A table of the tasks and the phase medians, for people."""
    ft = result["first_trajectory_s"]
    med = ft.get("median_all")
    lines = [
        "# Response time: instruction -> first motion command", "",
        "Written by `vla bench --only response` (`vla_common.bench_response`): the sim graph as separate "
        "processes on DDS loopback, an outside rclpy client sending each instruction as a `/vla/manipulate` "
        "goal; wall time to the first `/arm_controller/joint_trajectory` message. Target: median <= 1 s. "
        "Columns: wall seconds after the send when this client saw each status event; each feature cloud as "
        "wall time / its frames' stamp minus the simulated time at the send.", "",
        f"- tasks: {result['tasks']}, moved: {result['moved']}, machine: {result['machine']['cpus']} CPUs",
        f"- first trajectory: median {med if med is None else f'{med:.3f}'} s, p90 "
        f"{ft.get('p90_all') if ft.get('p90_all') is None else format(ft['p90_all'], '.3f')} s "
        f"(tasks without motion count as infinite)",
        f"- first gripper command: median {result['first_gripper_s'].get('median', float('nan')):.3f} s",
        f"- graph start-up: {result['startup_s']} s", "",
        "| seed | instruction | delay (s) | received | clouds (wall s / frames' sim s) | selected "
        "| motion_started | first trajectory "
        "| sim s | outcome |", "|---|---|---|---|---|---|---|---|---|---|"]

    f = _fmt
    for t in timings:
        e = t.events_s
        lines.append(f"| {t.seed} | {t.instruction} | {t.phase_delay_s:.2f} | "
                     f"{f(e.get('policy.instruction_received'))} | "
                     f"{' '.join(f'{w:.2f}/{st:+.2f}' for w, st in t.clouds) or '-'} | "
                     f"{f(e.get('policy.grasp_selected'))} | {f(e.get('executor.motion_started'))} | "
                     f"{f(t.first_trajectory_s)} | {f(t.sim_s)} | {t.outcome} |")
    lines += ["", "Phase medians (s after the send): " + ", ".join(
        f"{k} {v['median']:.3f}" for k, v in result["phases_s"].items() if v.get("n"))]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_common.bench_response [--out DIR] [--tasks N]``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--tasks", type=int, default=10)
    args = ap.parse_args(argv)
    r = run(args.out, args.tasks)
    print(json.dumps({k: r[k] for k in ("tasks", "moved", "first_trajectory_s", "meets_target")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
