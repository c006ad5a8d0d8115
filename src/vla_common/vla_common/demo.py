# SPDX-License-Identifier: Apache-2.0
"""``vla demo "<instruction>"``: the whole stack on a simulated robot, driven by one instruction.

Starts the ``sim`` node graph (sim bridge, perception, policy, executor) as separate processes with
DDS confined to this machine, waits until the simulated cameras are publishing and the policy is
listening, sends the instruction on ``/vla/instruction``, prints every ``/vla/status`` event, and
stops when the policy ends the task (``task_succeeded`` / ``task_failed``). It then writes what
happened to ``--save``: ``summary.json`` (events, outcome, verdict, which object the simulator saw
lifted, the placement check, the scene's objects, key-frame times), ``start.png`` / ``end.png``
(top camera, 640 x 480), ``side_start.png`` / ``side_end.png`` (side camera), ``start_annotated.png``
and ``side_start_annotated.png`` (the target from the simulator, the grasp candidates coloured by
score and the chosen pose, projected into the start frame), ``keyframes.png`` (start, grasp, lift,
place, end; top row top camera, bottom row side camera), ``episode.mp4`` and ``episode.gif`` (top and
side view side by side), and with ``--record`` ``episode.rrd``: a rerun recording (fused cloud in RGB
and by CLIP relevance to the instruction, candidates with scores, chosen poses, the TCP path, camera
images and the status events on one timeline; open it with ``rerun results/demo/episode.rrd``).

Usage::

    vla demo "pick up the red mug"
    vla demo "grasp something to drink from" --seed 3 --save results/demo --record
    vla demo "put the lemon left of the bowl" --task pickplace

The demo reads privileged simulator knowledge (``object_lifted`` events, the sim bridge's
``sim_report`` answer to ``/sim/report``) only to tell the person what really happened; no node of
the graph uses it. It prints the simulator's verdict first and exits 0 only when that verdict is
right; the policy's own report follows it. Grasps are judged by what went up
(``vla_sim.checks.judge_grasp``: "SUCCESS: lifted the red mug", "WRONG OBJECT: lifted the red cube,
asked for the red mug"); place and pick-and-place instructions by where the object came to rest,
with the same check ``vla eval`` scores with (``vla_sim.checks.place_report`` / ``judge_place``: at
rest inside the named region; "SUCCESS: placed the red mug on the plate", "WRONG PLACE: the red mug
rests 12 cm from the plate, asked for on the plate").
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
import yaml

from vla_common import topics
from vla_common.graph import ROBOTS, graph
from vla_common.language import NotUnderstood, parse_instruction
from vla_common.ros_env import apply_localhost_env
from vla_common.status import parse_status

LEGEND = "green: target (sim, for you) | dots: candidates, blue->red by score rank | yellow: chosen"
DEMO_CAMERAS = ("top", "left")  # the top view and a side view (both 640 x 480 in the sim rig)
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
    verdict_label: str = ""    # SUCCESS, WRONG OBJECT, WRONG PLACE, NOTHING LIFTED, ... REFUSED, NOT JUDGED
    placement: dict[str, Any] | None = None  # the simulator's placement check (vla_sim.checks.place_report)
    keyframes: dict[str, float] = field(default_factory=dict)  # key frame -> demo time (s)
    files: list[str] = field(default_factory=list)  # what was written to --save

    @property
    def succeeded(self) -> bool:
        """True when the simulator judged the episode right (else: the policy reported task_succeeded)."""
        return self.verdict_ok if self.verdict_ok is not None else self.outcome == "task_succeeded"


class _Driver:
    """The demo's own rclpy node: sends the instruction and records what the person may want to see.

    Everything is stamped with the demo's clock (seconds since the driver started): status events,
    top and side camera frames, the rig calibration, grasp candidates and chosen poses, gripper
    commands and joint states; with ``record`` also the fused feature clouds.
    """

    def __init__(self, instruction: str, max_frames: int = 120, record: bool = False) -> None:
        import rclpy
        from geometry_msgs.msg import PoseArray, PoseStamped
        from sensor_msgs.msg import Image, JointState, PointCloud2
        from std_msgs.msg import Float64, String

        from vla_common import conversions as conv
        from vla_common.qos import EVENT_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS

        self._conv = conv
        self.t0 = time.monotonic()
        self.node = rclpy.create_node("vla_demo")
        self.instruction = instruction
        self.events: list[dict[str, Any]] = []
        self.event_t: list[float] = []
        self.frames: dict[str, list[tuple[float, np.ndarray]]] = {cam: [] for cam in DEMO_CAMERAS}
        self.max_frames = max_frames
        self.rig: dict[str, Any] | None = None
        self.candidates: list[tuple[float, np.ndarray]] = []            # (t, (C, 4, 4))
        self.poses: list[tuple[float, str, np.ndarray]] = []            # (t, grasp|place, (4, 4))
        self.gripper: list[tuple[float, float]] = []                    # (t, command: 1 open, 0 closed)
        self.joints: list[tuple[float, list[str], np.ndarray]] = []     # (t, names, positions)
        self.clouds: list[tuple[float, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        self._pinned: set[float] = set()
        self.lock = threading.Lock()
        self.pub = self.node.create_publisher(String, topics.INSTRUCTION, EVENT_QOS)
        self.report_pub = self.node.create_publisher(String, "/sim/report", RELIABLE_QOS)
        self.node.create_subscription(String, topics.STATUS, self._on_status, EVENT_QOS)
        for cam in DEMO_CAMERAS:
            self.node.create_subscription(Image, f"/cameras/{cam}/color/image_raw",
                                          lambda m, c=cam: self._on_image(c, m), SENSOR_QOS)
        self.node.create_subscription(String, topics.RIG_CALIBRATION, self._on_rig, LATCHED_QOS)
        self.node.create_subscription(PoseArray, topics.GRASP_CANDIDATES, self._on_candidates, RELIABLE_QOS)
        for kind in ("grasp", "place"):
            self.node.create_subscription(PoseStamped, f"/vla/{kind}_pose",
                                          lambda m, k=kind: self._on_pose(k, m), RELIABLE_QOS)
        self.node.create_subscription(Float64, topics.GRIPPER_COMMAND, self._on_gripper, RELIABLE_QOS)
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, SENSOR_QOS)
        if record:
            self.node.create_subscription(PointCloud2, topics.FEATURE_CLOUD, self._on_cloud, RELIABLE_QOS)
        self._String = String

    def now(self) -> float:
        """Seconds since the driver started (the demo's timeline)."""
        return time.monotonic() - self.t0

    def _on_status(self, msg: Any) -> None:
        try:
            event = parse_status(msg.data)
        except ValueError:
            return
        with self.lock:
            self.events.append(event)
            self.event_t.append(self.now())
            if event["event"] in ("grasp_selected", "place_selected") and self.clouds:
                self._pinned.add(self.clouds[-1][0])  # the cloud this decision was made on
        if event["event"] == "sim_report":
            return  # privileged bulk data for the verdict and pictures, not for the console
        fields = {k: v for k, v in event.items() if k not in ("node", "event", "level", "detail")}
        extra = f"  {json.dumps(fields)[:200]}" if fields else ""
        print(f"[status] {event['node']}: {event['event']} ({event['level']}): {event['detail']}{extra}",
              flush=True)

    def _on_image(self, cam: str, msg: Any) -> None:
        try:
            rgb = self._conv.image_to_rgb(msg)
        except ValueError:
            return
        with self.lock:
            frames = self.frames[cam]
            if len(frames) >= self.max_frames:  # keep the first and thin out the rest
                frames[:] = frames[:1] + frames[2::2]
            frames.append((self.now(), rgb.copy()))

    def _on_rig(self, msg: Any) -> None:
        try:
            rig = yaml.safe_load(msg.data)
        except yaml.YAMLError:
            return
        with self.lock:
            self.rig = rig if isinstance(rig, dict) else None

    def _on_candidates(self, msg: Any) -> None:
        try:
            cands = self._conv.pose_array_to_matrices(msg)
        except ValueError:
            return
        with self.lock:
            self.candidates.append((self.now(), cands))

    def _on_pose(self, kind: str, msg: Any) -> None:
        try:
            T = self._conv.pose_stamped_to_matrix(msg)
        except ValueError:
            return
        with self.lock:
            self.poses.append((self.now(), kind, T))

    def _on_gripper(self, msg: Any) -> None:
        with self.lock:
            self.gripper.append((self.now(), float(msg.data)))

    def _on_joints(self, msg: Any) -> None:
        t = self.now()
        with self.lock:
            if self.joints and t - self.joints[-1][0] < 0.05:  # 20 Hz is enough for a path
                return
            self.joints.append((t, list(msg.name), np.asarray(msg.position, dtype=np.float64)))

    def _on_cloud(self, msg: Any) -> None:
        try:
            xyz, rgb, feats = self._conv.pointcloud2_to_numpy(msg)
        except ValueError:
            return
        ok = np.isfinite(xyz).all(1)
        item = (self.now(), xyz[ok].astype(np.float32), None if rgb is None else rgb[ok],
                None if feats is None else feats[ok].astype(np.float16))  # (N, D) halves the memory
        with self.lock:  # keep the clouds decisions were made on and the last two
            self.clouds = [c for c in self.clouds[:-1] if c[0] in self._pinned] + self.clouds[-1:] + [item]

    def has(self, node: str | None, event: str) -> bool:
        with self.lock:
            return any(e["event"] == event and (node is None or e["node"] == node) for e in self.events)

    def send(self) -> None:
        self.pub.publish(self._String(data=self.instruction))

    def ask_report(self, place: dict[str, Any] | None) -> None:
        """Ask the sim bridge for its privileged ``sim_report`` (start boxes; placement check)."""
        self.report_pub.publish(self._String(data=json.dumps({"place": place} if place else {})))


def _scene_objects(task: str, split: str, seed: int, case_file: str, case_index: int
                   ) -> tuple[list[str], str | None]:
    """The objects of the scene the sim bridge loads for these arguments, and the held one (seeded)."""
    from vla_sim.scenes import CaseSet, make_scene

    if case_file:
        cases = CaseSet.load(Path(case_file)).cases
        scene = cases[case_index % len(cases)]
    else:
        scene = make_scene(task, split, seed)
    held = getattr(scene, "held", None)
    return list(scene.names) + ([held] if held and held not in scene.names else []), held


def run_demo(instruction: str, robot: str = "ur5", task: str = "grasp", split: str = "seen", seed: int = 0,
             case_file: str = "", case_index: int = 0, timeout_s: float = 900.0, save: Path | None = None,
             extra_params: dict[str, dict[str, Any]] | None = None, quiet_nodes: bool = False,
             record: bool = False) -> DemoResult:
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
        save: folder for summary.json, pictures and video (None: save nothing).
        extra_params: per-node parameter overrides ``{node_name: {param: value}}``.
        quiet_nodes: do not forward the nodes' own log lines.
        record: also write ``episode.rrd`` (rerun) to ``save``.
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
    driver = _Driver(instruction, record=record and save is not None)
    seeded_objects, held = _scene_objects(task, split, seed, case_file, case_index)
    report: dict[str, Any] | None = None
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
                report = _ask_sim(driver, instruction, seeded_objects, held, _lifted(driver.events))
                break
        else:
            result.detail = f"no task result within {timeout_s:.0f} s"
    finally:
        result.wall_s = time.monotonic() - t0
        with driver.lock:
            result.events = list(driver.events)
        result.lifted = _lifted(result.events)
        for e in result.events:
            if e["event"] == "scene_loaded":
                result.scene_objects = list(e.get("objects", []))
        if not result.scene_objects:  # scene_loaded is volatile: a driver that joined late missed it
            result.scene_objects = seeded_objects
        if result.scene_objects and result.outcome != "node_died":
            _judge(result, held, report)
        driver.node.destroy_node()
        rclpy.try_shutdown()
        launcher.stop()
        if out is not None:
            out.close()
        os.environ.clear()
        os.environ.update(saved_env)
    if save is not None:
        _save(result, driver, Path(save), report, robot, record)
    return result


def _lifted(events: list[dict[str, Any]]) -> list[str]:
    """Objects the simulator saw lifted (privileged ``object_lifted`` events), in order."""
    out: list[str] = []
    for e in events:
        if e["event"] == "object_lifted" and e.get("object") not in out:
            out.append(e.get("object"))
    return out


def _moved(instruction: str, held: str | None, lifted: list[str]) -> str | None:
    """The object to be put down: the held one of a place, the lifted one of a pick-and-place."""
    try:
        kind = parse_instruction(instruction).kind
    except NotUnderstood:
        return None
    if kind == "place":
        return held or (lifted[-1] if lifted else None)
    if kind == "pickplace":
        return lifted[-1] if lifted else None
    return None


def _ask_sim(driver: _Driver, instruction: str, scene_objects: list[str], held: str | None,
             lifted: list[str], wait_s: float = 30.0) -> dict[str, Any] | None:
    """The sim bridge's privileged ``sim_report`` (start boxes; placement check when one is asked)."""
    import rclpy

    from vla_sim.checks import place_question  # sim tooling: the person's view, not the robot's

    question = place_question(instruction, scene_objects, _moved(instruction, held, lifted))
    driver.ask_report(question)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        rclpy.spin_once(driver.node, timeout_sec=0.1)
        with driver.lock:
            reports = [e for e in driver.events if e["event"] == "sim_report"]
        if reports:
            return reports[-1]
    print("[demo] the sim bridge gave no sim_report: placement not judged, no target boxes", flush=True)
    return None


def _judge(result: DemoResult, held: str | None, report: dict[str, Any] | None) -> None:
    """The simulator's verdict on ``result`` (grasp: what went up; place: where it came to rest)."""
    from vla_sim.checks import judge_grasp, judge_place  # sim tooling: the person's view, not the robot's

    refusals = [e for e in result.events if e["event"] in (
        "target_not_found", "instruction_not_understood", "instruction_refused")]
    refused = refusals[-1].get("detail", refusals[-1]["event"]) if refusals else ""
    try:
        places = parse_instruction(result.instruction).kind != "grasp"
    except NotUnderstood:
        places = False
    if places:
        result.placement = (report or {}).get("place")
        moved = _moved(result.instruction, held, result.lifted)
        v = judge_place(result.instruction, result.scene_objects, moved, result.placement, result.lifted,
                        refused)
    else:
        v = judge_grasp(result.instruction, result.scene_objects, result.lifted, refused)
    result.verdict, result.verdict_ok, result.targets = v.sentence, v.ok, v.targets
    result.verdict_label = v.label


def exit_code(result: DemoResult) -> int:
    """``vla demo``'s exit status: 0 when the simulator judged the episode right, else 1."""
    return 0 if result.succeeded else 1


def _frame_at(frames: list[tuple[float, np.ndarray]], t: float) -> np.ndarray:
    """The first frame taken at or after demo time ``t`` (the last one if none is)."""
    return next((f for ft, f in frames if ft >= t), frames[-1][1])


def _keyframe_times(driver: _Driver, events: list[dict[str, Any]], event_t: list[float]) -> dict[str, float]:
    """Demo times of the key moments: start, grasp (gripper closes), lift, place (gripper opens), end."""
    top = driver.frames["top"]
    keys: dict[str, float] = {"start": top[0][0]}
    lift = next((t for e, t in zip(events, event_t, strict=False) if e["event"] == "object_lifted"), None)
    grasp_t = next((t for t, k, _ in driver.poses if k == "grasp"), None)
    if grasp_t is not None:
        closes = [t for t, v in driver.gripper if t >= grasp_t and v <= 0.01]
        before_lift = [t for t in closes if lift is None or t <= lift]
        if closes:  # the closing that lifted something (else the first one)
            keys["grasp"] = (before_lift[-1] if before_lift else closes[0]) + 0.5
    if lift is not None:
        keys["lift"] = lift
    place_t = next((t for t, k, _ in driver.poses if k == "place"), None)
    if place_t is not None:
        release = next((t for t, v in driver.gripper if t >= place_t and v > 0.01), None)
        if release is not None:
            keys["place"] = release + 0.5
    keys["end"] = top[-1][0]
    return keys


def _tcp_path(joints: list[tuple[float, list[str], np.ndarray]], robot: str
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """(times (K,), world TCP positions (K, 3)) from the recorded joint states (forward kinematics)."""
    if not joints:
        return None
    from vla_common.transforms import pose_to_matrix
    from vla_executor.robot_model import RobotModel  # tooling: the demo's own view of the arm

    model = RobotModel.load(robot)
    base = model.config.get("base_pose_world", {"xyz": [0, 0, 0], "quat_xyzw": [0, 0, 0, 1]})
    T_world_base = pose_to_matrix(base["xyz"], base["quat_xyzw"])
    ts, pts = [], []
    for t, names, q in joints:
        try:
            qa = np.array([q[names.index(j)] for j in model.joint_names])
        except ValueError:
            continue
        ts.append(t)
        pts.append((T_world_base @ model.fk(qa))[:3, 3])
    return (np.asarray(ts), np.asarray(pts)) if pts else None


def _relevance(clouds: list[tuple[float, np.ndarray, Any, Any]], texts: list[str]) -> list[np.ndarray | None]:
    """Per-point CLIP cosine similarity of each cloud's features to its stage's text (None if unavailable)."""
    if not clouds or not texts or all(c[3] is None for c in clouds):
        return [None] * len(clouds)
    try:
        import torch

        from vla_perception.clip_features import ClipFeatureExtractor  # the perception node's CLIP

        with torch.inference_mode():
            emb = ClipFeatureExtractor("compact").text(texts).cpu().numpy()  # (T, D)
    except Exception as exc:  # noqa: BLE001 - the recording goes on without the relevance colouring
        print(f"[demo] no relevance colouring in the recording: {exc}", flush=True)
        return [None] * len(clouds)
    out: list[np.ndarray | None] = []
    for i, (_, _, _, feats) in enumerate(clouds):
        if feats is None or feats.shape[1] != emb.shape[1]:
            out.append(None)
            continue
        f = feats.astype(np.float32)
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
        out.append(f @ emb[min(i, len(emb) - 1)])  # (N,)
    return out


def _stage_text(events: list[dict[str, Any]], event_t: list[float], t: float) -> str:
    """The stage text the policy was working on after demo time ``t`` ("pick up the red mug")."""
    received = next((e for e in events if e["event"] == "instruction_received"), None)
    if received is None:
        return ""
    stages, texts = list(received.get("stages") or []), list(received.get("stage_texts") or [])
    sel = next((e for e, et in zip(events, event_t, strict=False)
                if et >= t and e["event"] in ("grasp_selected", "place_selected")), None)
    kind = sel["event"].split("_")[0] if sel else (stages[0] if stages else "grasp")
    return texts[stages.index(kind)] if kind in stages and len(texts) == len(stages) else (texts or [""])[0]


def _record(path: Path, driver: _Driver, events: list[dict[str, Any]], event_t: list[float],
            cams: dict[str, Any], boxes: dict[str, Any], tcp: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Write the episode as one rerun recording (see ``vla_common.recording.EpisodeRecording``)."""
    from vla_common.recording import EpisodeRecording

    rec = EpisodeRecording(path, name="vla_demo")
    rec.time(0.0)
    rec.targets(boxes)
    texts = [_stage_text(events, event_t, c[0]) for c in driver.clouds]
    for (t, xyz, rgb, _), rel in zip(driver.clouds, _relevance(driver.clouds, texts), strict=True):
        rec.time(t)
        rec.cloud(xyz, rgb, rel)
    selected = [(et, e) for e, et in zip(events, event_t, strict=False)
                if e["event"] in ("grasp_selected", "place_selected")]
    for t, cands in driver.candidates:
        sel = next((e for et, e in selected if et >= t - 0.5), None)
        kind = sel["event"].split("_")[0] if sel else "grasp"
        scores = np.asarray(sel.get("scores"), float) if sel and sel.get("scores") is not None else None
        rec.time(t)
        rec.candidates(cands, scores, kind=kind)
    for t, kind, T in driver.poses:
        rec.time(t)
        sel = next((e for et, e in selected if et >= t - 0.5 and e["event"].startswith(kind)), None)
        rec.chosen(T, kind, float(sel["score"]) if sel and sel.get("score") is not None else None)
    for cam in DEMO_CAMERAS:
        for t, img in driver.frames[cam][::2]:
            rec.time(t)
            rec.image(cams.get(cam), cam, img)
    if tcp is not None:
        ts, pts = tcp
        for k in range(len(ts)):
            rec.time(float(ts[k]))  # the TCP at 20 Hz, the path so far 4 times a second
            rec.trajectory(pts[: k + 1], path=k % 5 == 0 or k == len(ts) - 1)
    for e, t in zip(events, event_t, strict=False):
        if e["event"] == "sim_report":
            continue
        rec.time(t)
        rec.event(f"{e['node']}: {e['event']}: {e.get('detail', '')}", e.get("level", "info"))
    rec.close()


def _save(result: DemoResult, driver: _Driver, out: Path, report: dict[str, Any] | None, robot: str,
          record: bool) -> None:
    """Write summary.json, the pictures, the key-frame strip, MP4, GIF (and the recording) to ``out``."""
    from PIL import Image

    from vla_common import recording as rec

    out.mkdir(parents=True, exist_ok=True)
    events, event_t = list(driver.events), list(driver.event_t)
    written: list[str] = []

    def save_png(name: str, img: np.ndarray) -> None:
        Image.fromarray(img).save(out / name)
        written.append(name)

    top, side = driver.frames["top"], driver.frames["left"]
    try:
        cams = rec.rig_cameras(driver.rig or _rig_file())
    except (OSError, ValueError, KeyError) as exc:
        print(f"[demo] no camera calibration, pictures without annotation: {exc}", flush=True)
        cams = {}
    boxes: dict[str, Any] = {}
    start_boxes = (report or {}).get("start_boxes") or {}
    for name in result.targets:
        if name in start_boxes:
            boxes[f"target: {name}"] = start_boxes[name]
    for name in ((result.placement or {}).get("references") or {}):
        if name in start_boxes:
            boxes[f"reference: {name}"] = start_boxes[name]
    if top:
        result.keyframes = _keyframe_times(driver, events, event_t)
        save_png("start.png", top[0][1])
        save_png("end.png", top[-1][1])
        cands = driver.candidates[0][1] if driver.candidates else None
        chosen = driver.poses[0][2] if driver.poses else None
        sel = next((e for e in events if e["event"] in ("grasp_selected", "place_selected")), None)
        scores = np.asarray(sel["scores"], float) if sel and sel.get("scores") is not None else None
        caption = f"{result.instruction!r}: {result.verdict_label or result.outcome}"
        for cam, frames, name in (("top", top, "start_annotated.png"),
                                  ("left", side, "side_start_annotated.png")):
            if frames and cam in cams:
                save_png(name, rec.annotate(frames[0][1], cams[cam], boxes, cands, scores, chosen, caption,
                                            LEGEND))
        rows = [rec.keyframe_strip([(k, _frame_at(top, t)) for k, t in result.keyframes.items()])]
        if side:
            rows.append(rec.keyframe_strip([(k, _frame_at(side, t)) for k, t in result.keyframes.items()]))
        save_png("keyframes.png", np.concatenate(rows, axis=0))
        small = [np.asarray(Image.fromarray(f).resize((320, 240))) for _, f in top]
        if side:
            small = [rec.side_by_side(s, np.asarray(Image.fromarray(_frame_at(side, t)).resize((320, 240))))
                     for s, (t, _) in zip(small, top, strict=True)]
        try:
            rec.write_video(small, out / "episode.mp4", out / "episode.gif")
            written += ["episode.mp4", "episode.gif"]
        except (OSError, RuntimeError, ImportError) as exc:  # no or a failing ffmpeg: keep the GIF
            print(f"[demo] no MP4 ({exc}); writing the GIF only", flush=True)
            rec.write_video(small, None, out / "episode.gif")
            written.append("episode.gif")
    if side:
        save_png("side_start.png", side[0][1])
        save_png("side_end.png", side[-1][1])
    if record:
        tcp = None
        try:
            tcp = _tcp_path(driver.joints, robot)
        except (ImportError, ValueError, OSError) as exc:
            print(f"[demo] no TCP trajectory in the recording: {exc}", flush=True)
        try:
            _record(out / "episode.rrd", driver, events, event_t, cams,
                    {k.split(": ", 1)[1]: v for k, v in boxes.items() if k.startswith("target")}, tcp)
            written.append("episode.rrd")
        except RuntimeError as exc:  # rerun-sdk missing: say so, keep the pictures
            print(f"[demo] no recording: {exc}", flush=True)
    written.append("summary.json")
    result.files = written
    summary = {k: v for k, v in result.__dict__.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


def _rig_file() -> dict[str, Any]:
    """The simulated rig's calibration, ``config/rig_sim.yaml`` (when the latched topic was missed)."""
    from vla_common.graph import config_dir

    return yaml.safe_load((config_dir() / "rig_sim.yaml").read_text())


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
    p.add_argument("--record", action="store_true",
                   help="also write a rerun recording, <save>/episode.rrd (open it with: rerun episode.rrd)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla demo``; exit 0 when the simulator judged the episode right."""
    args = build_parser().parse_args(argv)
    result = run_demo(args.instruction, robot=args.robot, task=args.task, split=args.split, seed=args.seed,
                      case_file=args.case_file, case_index=args.case_index, timeout_s=args.timeout_s,
                      save=args.save, quiet_nodes=args.quiet_nodes, record=args.record)
    if result.verdict:
        print(f"\n[demo] {result.verdict}")
    print(f"[demo] instruction: {result.instruction!r}")
    if result.scene_objects:
        print(f"[demo] scene objects: {', '.join(result.scene_objects)}")
    print(f"[demo] policy's report: {result.outcome} ({result.detail})")
    print(f"[demo] objects lifted (simulator's view): {', '.join(result.lifted) or 'none'}")
    if result.placement:
        p = result.placement
        refs = (p.get("references") or {}).items()
        gaps = ", ".join(f"{r} {v.get('gap_m', 0.0) * 100:.0f} cm" for r, v in refs)
        print(f"[demo] placement (simulator's view): {p.get('object')} {p.get('relation')} -> "
              f"{'in' if p.get('success') else 'not in'} the region; at rest: {p.get('at_rest')}, "
              f"in the gripper: {p.get('held')}, distance to the reference footprint: {gaps or '-'}")
    print(f"[demo] wall time {result.wall_s:.1f} s; written to {args.save}/: {', '.join(result.files)}")
    if "episode.rrd" in result.files:
        print(f"[demo] open the recording with: rerun {args.save / 'episode.rrd'}")
    return exit_code(result)


if __name__ == "__main__":
    sys.exit(main())
