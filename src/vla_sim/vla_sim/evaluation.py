# SPDX-License-Identifier: Apache-2.0
"""``vla eval``: the benchmark protocol in simulation, with any policy.

Usage::

    vla eval --policy expert --task grasp --split seen --episodes 20
    vla eval --policy random --task place --split unseen --episodes 10 --out results/eval
    vla eval --policy expert --task pickplace --cases src/vla_sim/vla_sim/cases/pickplace_seen.json
    vla eval --policy my_pkg.my_module:make_policy --task grasp --split seen   # a learned policy
    vla eval --policy vla_policy.sim_adapter:make_sr --cases fixed --runs 15 --workers 2 --out results/sr

Runs, workers, resume: ``--runs N`` runs every case N times; run k of case c renders its depth
images with noise seeded by (--seed, c, k) (and reseeds the random policy the same way), so the
runs differ and a rerun reproduces them, whichever worker runs them. ``--noise-sigma`` defaults
to 0 with one run and to 2 mm (an L515-like sensor) with several; physics and the expert are
deterministic, so with ``--noise-sigma 0`` runs differ only through a policy's own randomness
(the random policy's draws): the expert's runs are then identical.
``--workers K`` runs episodes on K processes, each with its own SimWorld and its own policy built
from ``--policy`` (K = 1: in this process; this machine has 2 cores); results are merged in case
order. Each finished episode is appended to ``<out>/eval_<...>.episodes.jsonl``; the same
command with the same ``--out`` resumes, running only the missing episodes (more ``--episodes``
or ``--runs`` add episodes), and refuses a log written with other settings (policy, task, split,
case file, robot, seed, render size, renderer, noise). A progress bar shows the ETA. The tables
give the success rate, the first-attempt grasp success next to grasp success within 8 attempts
and the mean decisions; with several runs also the spread over runs and a per-case table.

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
import hashlib
import importlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vla_common.camera import RGBDFrame
from vla_common.language import NotUnderstood, parse_instruction
from vla_common.task import Step, TaskCore
from vla_sim import checks
from vla_sim.instructions import Instruction
from vla_sim.scenes import TASKS, CaseSet, Scene, case_path, make_case
from vla_sim.sim_executor import SimExecutor, executor_for

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

    def reseed(self, seed: np.random.SeedSequence) -> None:
        """Restart the draws from ``seed``.

        ``evaluate`` calls it per episode with a seed of (case, run), so an episode's draws do not
        depend on which worker ran which episodes before it.
        """
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
    outcome: str = ""  # the task core's final outcome (succeeded, failed, target_not_found, ...)
    grasp_attempts: int = 0  # grasp decisions of the episode (1 = first-attempt success when grasp_success)
    motions: list[dict[str, Any]] = field(default_factory=list)  # per executed motion: kind, success, metrics


def _decide(world, policy, instruction: Instruction, core: TaskCore,
            noise) -> tuple[np.ndarray | None, str, str]:
    """One decision for the task core's current stage: (pose or None, outcome, reason).

    The policy reads the stage's canonical text (as the policy node passes it), the robot's own
    state, the full instruction and the task core's exclusions (``robot_state['exclude']``).
    """
    stage = core.stage
    frames = world.render(noise) if getattr(policy, "needs_frames", True) else []
    state = robot_state(world, stage.kind)
    state.update(instruction=instruction.text, stage_text=stage.text, exclude=list(core.exclude))
    T = policy.act(frames, stage.text, state)
    if T is not None:
        return np.asarray(T, dtype=np.float64), "ok", ""
    outcome, reason = getattr(policy, "last_outcome", None) or ("no_pose", "")
    return None, outcome, reason or f"no {stage.kind} proposed"


def _understand(policy, text: str):
    """The instruction's structure as the robot reads it (a learned policy: with its vocabulary)."""
    understand = getattr(policy, "understand", None)
    return understand(text) if callable(understand) else parse_instruction(text)


def run_episode(
    world, scene: Scene, policy, noise=None, max_attempts: int = checks.MAX_GRASP_ATTEMPTS,
    executor: SimExecutor | None = None,
) -> EpisodeResult:
    """Load ``scene`` (with its instruction) into ``world`` and run one episode of its task.

    The episode is a :class:`vla_common.task.TaskCore` task, run as the policy node runs it (stages
    read from the instruction, attempts with exclusion of failed poses, target-not-found and
    not-understood ending the task), and every motion is executed by ``vla_executor``
    (:class:`vla_sim.sim_executor.SimExecutor`; default: the world's own). The benchmark only
    judges each executed stage in physics (``vla_sim.checks``): a grasp attempt succeeds when a
    target is held and lifted >= 10 cm (a lifted non-target is removed from the scene), a place
    when the object rests in the relation's region. Grasp stages allow ``max_attempts``
    decisions, place stages one (the protocol).
    """
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
    executor = executor or executor_for(world)
    res = EpisodeResult(scene.task, scene.split, scene.seed, instruction.text, False, None, None, 0, 0.0, 0.0)
    targets = tuple(instruction.targets) if scene.task == "grasp" else (instruction.target,)
    try:
        parsed = _understand(policy, instruction.text)
        core = TaskCore(instruction.text, parsed.stages(), max_attempts=max_attempts, max_place_attempts=1)
    except NotUnderstood as exc:
        core = TaskCore(instruction.text, [("grasp", instruction.text)], max_attempts=max_attempts)
        core.end(False, "not_understood", exc.reason)
    read_as = "pickplace" if len(core.stages) == 2 else core.stages[0][0]
    if read_as != scene.task:
        res.notes.append(f"the robot read a {read_as} task; the benchmark asked for {scene.task}")
    while not core.done:
        kind = core.stage.kind
        T, outcome, reason = _decide(world, policy, instruction, core, noise)
        res.steps += 1
        res.grasp_attempts += kind == "grasp"
        if core.decided(outcome, T, reason) is not Step.EXECUTE:
            res.notes.append(f"{kind}: {outcome}: {reason}")
            continue
        if kind == "grasp":
            z_before = checks.object_heights(world)
            motion = executor.run("grasp", T)
            world.step(48)  # let a slipping object fall before judging
            chk = checks.check_grasp(world, targets, z_before)
            for name in chk.wrong:  # a lifted non-target leaves the scene
                world.remove_object(name)
                res.removed.append(name)
            ok = res.grasp_success = chk.success
            why = "" if ok else (f"lifted {', '.join(chk.wrong)}, not the target" if chk.wrong
                                 else f"nothing lifted ({motion.reason or 'motion done'})")
        else:
            motion = executor.run("place", T)
            ok, rest = checks.check_place(world, instruction.target, instruction.region)
            res.place_success = ok
            if motion.success and not rest:
                res.notes.append("object not at rest")
            why = "" if ok else "the object does not rest in the asked region"
        res.motions.append(motion.to_dict())
        if not motion.success:
            res.notes.append(f"{kind} motion: {motion.reason}: {motion.detail}")
        core.motion_finished(ok, why)  # the judged attempt, not the executor's own verdict
    res.outcome = core.result.outcome
    if scene.task == "grasp":
        res.success = res.grasp_success = bool(res.grasp_success)
    else:
        if scene.task == "pickplace":
            res.grasp_success = bool(res.grasp_success)
        res.place_success = bool(res.place_success)
        res.success = bool(res.place_success and (scene.task == "place" or res.grasp_success))
    res.sim_time_s = world.sim_time_s
    res.wall_s = time.perf_counter() - t0
    return res


def summarize(results: list[EpisodeResult], runs: int = 1) -> dict[str, Any]:
    """Success rates and planning steps over episodes.

    ``results`` come in case order with ``runs`` consecutive episodes per case (as :func:`evaluate`
    returns them). Grasp rates (grasp and pick-and-place): ``first_attempt_success_rate`` = the
    first decision's grasp held, ``grasp_success_rate`` = a grasp held within the attempt budget
    (``checks.MAX_GRASP_ATTEMPTS`` = 8). ``mean_steps`` = policy decisions per episode. With
    ``runs`` > 1 also the spread over runs: the success rate of each run over all cases, their
    standard deviation, the cases whose runs disagree, and per case the successes out of ``runs``
    and the mean and standard deviation of its decisions.
    """
    n = len(results)
    if runs < 1 or n % runs:
        raise ValueError(f"{n} results do not split into runs of {runs}")
    succ = [r for r in results if r.success]
    out: dict[str, Any] = {
        "episodes": n,
        "cases": n // runs,
        "runs": runs,
        "success_rate": len(succ) / n if n else 0.0,
        "mean_steps": float(np.mean([r.steps for r in results])) if n else 0.0,
        "mean_steps_success": float(np.mean([r.steps for r in succ])) if succ else None,
        "mean_sim_time_s": float(np.mean([r.sim_time_s for r in results])) if n else 0.0,
        "mean_wall_s": float(np.mean([r.wall_s for r in results])) if n else 0.0,
    }
    g = [r for r in results if r.grasp_success is not None]
    p = [r.place_success for r in results if r.place_success is not None]
    if g:
        out["first_attempt_success_rate"] = sum(_first_attempt(r) for r in g) / len(g)
        out["grasp_success_rate"] = sum(bool(r.grasp_success) for r in g) / len(g)
    if p:
        out["place_success_rate"] = sum(p) / len(p)
    if runs > 1 and n:
        by_run = [float(np.mean([r.success for r in results[k::runs]])) for k in range(runs)]
        out["success_rate_by_run"] = by_run
        out["success_rate_std_over_runs"] = float(np.std(by_run, ddof=1))
        per_case = []
        for c in range(n // runs):
            rs = results[c * runs : (c + 1) * runs]
            steps = [r.steps for r in rs]
            grasped = [r for r in rs if r.grasp_success is not None]
            per_case.append(
                {
                    "case": c,
                    "seed": rs[0].seed,
                    "instruction": rs[0].instruction,
                    "successes": sum(bool(r.success) for r in rs),
                    "first_attempt_successes": sum(_first_attempt(r) for r in grasped) if grasped else None,
                    "mean_steps": float(np.mean(steps)),
                    "std_steps": float(np.std(steps, ddof=1)),
                }
            )
        out["mixed_cases"] = sum(0 < pc["successes"] < runs for pc in per_case)
        out["per_case"] = per_case
    return out


def _first_attempt(r: EpisodeResult) -> bool:
    """The episode's grasp held on its first decision."""
    return bool(r.grasp_success) and r.grasp_attempts == 1


_TABLE_LEGEND = (
    "success_rate: episode success; first_attempt_success_rate: the first grasp decision held; "
    "grasp_success_rate: a grasp held within 8 attempts; mean_steps: policy decisions per episode"
)


def markdown_table(meta: dict[str, Any], summary: dict[str, Any]) -> str:
    """Markdown table of a run (one row) and a legend.

    With several runs per case also the spread over runs and a per-case table.
    """
    cols = [
        "policy",
        "task",
        "split",
        "cases",
        "runs",
        "episodes",
        "success_rate",
        "first_attempt_success_rate",
        "grasp_success_rate",
        "place_success_rate",
        "mean_steps",
        "mean_steps_success",
    ]
    if "success_rate_std_over_runs" in summary:
        cols.insert(cols.index("success_rate") + 1, "success_rate_std_over_runs")
        cols.append("mixed_cases")
    if meta.get("phrasing", "templated") != "templated":
        cols.insert(cols.index("split") + 1, "phrasing")
    row = {**meta, **summary}
    text = _md_rows(cols, [[row.get(c) for c in cols]]) + "\n" + _TABLE_LEGEND
    if "success_rate_std_over_runs" in summary:
        text += "; success_rate_std_over_runs: standard deviation of the runs' success rates; "
        text += "mixed_cases: cases whose runs disagree"
    text += ".\n"
    per_case = summary.get("per_case")
    if per_case:
        runs = summary["runs"]
        text += f"\nPer case over {runs} runs (each run its own sensor-noise and policy seed):\n\n"
        text += _md_rows(
            ["case", "seed", "instruction", "successes", "first-attempt grasps", "decisions (mean ± std)"],
            [
                [
                    pc["case"],
                    pc["seed"],
                    pc["instruction"],
                    f"{pc['successes']}/{runs}",
                    "-" if pc["first_attempt_successes"] is None
                    else f"{pc['first_attempt_successes']}/{runs}",
                    f"{pc['mean_steps']:.2f} ± {pc['std_steps']:.2f}",
                ]
                for pc in per_case
            ],
        )
    return text


def _md_rows(cols: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table: header ``cols`` and ``rows`` (floats with 3 decimals, None as '-')."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v).replace("|", "/")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


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


# ----------------------------------------------------------------------- runs, workers, resume
DEFAULT_RUN_NOISE_SIGMA_M = 0.002  # depth noise when --runs > 1 and no --noise-sigma (L515: ~2 mm)
LOG_VERSION = 1


class EpisodeNoise:
    """Gaussian depth noise (``vla_sim.world.DepthNoise``, no dropout) from the episode's own generator.

    The generator is seeded by (seed, case, run) instead of the world's render counter, so an
    episode's noise is the same whichever worker runs it and whatever ran before it in that world.
    """

    def __init__(self, sigma_m: float, seed: np.random.SeedSequence) -> None:
        from vla_sim.world import DepthNoise

        self.model = DepthNoise(sigma_m, 0.0)
        self.sigma_m = self.model.sigma_m
        self.dropout_prob = self.model.dropout_prob
        self.rng = np.random.default_rng(seed)

    def apply(self, depth: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Noisy copy of a (H, W) depth image; ``rng`` (the world's) is ignored."""
        return self.model.apply(depth, self.rng)


def episode_seeds(seed: int, case: int, run: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(sensor-noise seed, policy seed) of episode (``case``, ``run``) of an evaluation seeded ``seed``."""
    noise, policy = np.random.SeedSequence([int(seed) % 2**63, int(case), int(run)]).spawn(2)
    return noise, policy


PHRASINGS = ("templated", "heldout")
HELDOUT_SET = "set_d"  # the held-out phrasing set --phrasing heldout draws from (B until session 6, C in 6)


def heldout_text(text: str, rng: np.random.Generator) -> str:
    """The instruction ``text`` (a templated sentence) said with a held-out phrasing, same slots.

    The sentence is parsed (``vla_common.language``; templated sentences parse as built) and its
    object phrase, relation and reference are put into a template drawn from the set
    ``HELDOUT_SET`` (D) of ``vla_policy/heldout_phrasings.yaml`` (written before the parser rules
    were last changed and measured once after; never trained or tuned on), the relation in one of
    that file's surface forms ("to the left of").
    "something to ..." phrases replace "the / that {object}" whole ("could you take something to
    eat away").
    """
    from vla_policy.eval_language import load_heldout

    held = load_heldout()
    parsed = parse_instruction(text)
    tmpl = str(rng.choice(held[HELDOUT_SET][parsed.kind]))
    obj = parsed.object or ""
    if obj.split()[:1] == ["something"]:
        tmpl = tmpl.replace("the {object}", "{object}").replace("that {object}", "{object}")
    relation = str(rng.choice(held["relations"][parsed.relation])) if parsed.relation else ""
    return tmpl.format(object=obj, relation=relation, reference=parsed.reference or "")


class _EpisodeRunner:
    """One SimWorld and one policy that run episodes (case, run); in-process or in a worker."""

    def __init__(self, policy: Any, cfg: dict[str, Any]) -> None:
        from vla_sim.world import SimWorld

        self.policy = policy
        self.cfg = cfg
        self.case_list = CaseSet.load(Path(cfg["cases"])).cases if cfg["cases"] else None
        self.world = SimWorld(
            robot=cfg["robot"],
            renderer=cfg["renderer"],
            seed=cfg["seed"],
            render_size=tuple(cfg["render_size"]),
        )

    def run(self, case: int, run: int) -> EpisodeResult:
        cfg = self.cfg
        if self.case_list is not None:
            scene = self.case_list[case % len(self.case_list)]
        else:
            scene = make_case(self.world, cfg["task"], cfg["split"], cfg["seed"] + case)
        if cfg.get("phrasing", "templated") == "heldout":  # same slots, a held-out sentence
            text = heldout_text(scene.instruction["text"], np.random.default_rng([cfg["seed"], case, 17]))
            scene.instruction = {**scene.instruction, "text": text}
        noise_seed, policy_seed = episode_seeds(cfg["seed"], case, run)
        noise = EpisodeNoise(cfg["noise_sigma_m"], noise_seed) if cfg["noise_sigma_m"] > 0 else None
        if hasattr(self.policy, "reseed"):
            self.policy.reseed(policy_seed)
        recorder = _recorder(cfg["record"], case * cfg["runs"] + run, scene, self.world)
        res = run_episode(self.world, scene, recorder.policy(self.policy) if recorder else self.policy, noise)
        if recorder is not None:
            recorder.finish(res)
        return res

    def close(self) -> None:
        self.world.close()


_WORKER: dict[str, _EpisodeRunner] = {}


def _worker_init(spec: str, cfg: dict[str, Any], threads: int) -> None:
    """Worker process start: its own policy (from the spec) and its own SimWorld."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported by a learned policy
    logging.basicConfig(level=logging.WARNING)
    policy = make_policy(spec, cfg["seed"])
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    _WORKER["runner"] = _EpisodeRunner(policy, cfg)


def _worker_run(case: int, run: int) -> tuple[int, int, EpisodeResult]:
    return case, run, _WORKER["runner"].run(case, run)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def _result_from_dict(d: dict[str, Any]) -> EpisodeResult:
    known = {f.name for f in fields(EpisodeResult)}
    return EpisodeResult(**{k: v for k, v in d.items() if k in known})


class EpisodeLog:
    """``vla eval``'s resume file: JSON lines, a settings header, then one line per finished episode.

    Episodes are keyed by (case index, scene seed, run); the settings that decide an episode's
    outcome (policy, task, split, case file and its content hash, robot, seed, render size,
    renderer, depth noise, attempt budget) must equal the header's, else :class:`ValueError`.
    Neither ``--workers`` nor ``--episodes``/``--runs`` are settings: a rerun with more cases or
    runs adds only the missing episodes. A line cut off by a kill is dropped on reading.
    """

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings, default=_json_default))
        self.done: dict[tuple[int, int, int], EpisodeResult] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"vla_eval_log": LOG_VERSION, "settings": self.settings})

    def _read(self) -> None:
        raw = self.path.read_text()
        lines = raw.split("\n")
        if not raw.endswith("\n"):  # the last line was cut off (killed while writing): drop it
            logger.warning("%s: dropping an incomplete last line", self.path)
            raw = raw[: len(raw) - len(lines[-1])]
            self.path.write_text(raw)
        lines = [ln for ln in raw.split("\n") if ln.strip()]
        try:
            head = json.loads(lines[0])
            old = head["settings"]
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path} is no vla eval episode log ({exc}); use another --out") from exc
        if old != self.settings:
            diff = ", ".join(
                f"{k}: {old.get(k)!r} there, {self.settings.get(k)!r} now"
                for k in sorted(set(old) | set(self.settings))
                if old.get(k) != self.settings.get(k)
            )
            hint = ""
            if old.get("noise_sigma_m") != self.settings.get("noise_sigma_m"):
                hint = (f" (--noise-sigma defaults to 0 with --runs 1 and {DEFAULT_RUN_NOISE_SIGMA_M}"
                        " with more runs: give it explicitly)")
            raise ValueError(
                f"{self.path} holds episodes run with other settings ({diff}); refusing to mix them: "
                f"rerun with the same settings to resume, or give another --out{hint}"
            )
        for i, ln in enumerate(lines[1:], start=2):
            try:
                d = json.loads(ln)
                self.done[(int(d["case"]), int(d["seed"]), int(d["run"]))] = _result_from_dict(d["result"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{self.path} line {i} is not an episode record: {exc}") from exc

    def _append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")
            f.flush()

    def add(self, case: int, seed: int, run: int, res: EpisodeResult) -> None:
        """Record a finished episode (appended at once, so a killed run loses only running episodes)."""
        self.done[(case, seed, run)] = res
        self._append({"case": case, "seed": seed, "run": run, "result": asdict(res)})


def run_settings(
    policy: str,
    task: str,
    split: str,
    cases: Path | None,
    robot: str,
    seed: int,
    render_size: tuple[int, int],
    noise_sigma_m: float,
    renderer: str,
    phrasing: str = "templated",
) -> dict[str, Any]:
    """The settings an episode's outcome depends on (what a resumed evaluation must share)."""
    extra = {} if phrasing == "templated" else {"phrasing": phrasing}  # older logs stay resumable
    return extra | {
        "policy": policy,
        "task": task,
        "split": split,
        "cases": Path(cases).name if cases is not None else None,  # the content hash identifies it
        "cases_sha256": hashlib.sha256(Path(cases).read_bytes()).hexdigest() if cases is not None else None,
        "robot": robot,
        "seed": int(seed),
        "render_size": [int(render_size[0]), int(render_size[1])],
        "noise_sigma_m": float(noise_sigma_m),
        "renderer": renderer,
        "max_grasp_attempts": checks.MAX_GRASP_ATTEMPTS,
    }


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
    *,
    runs: int = 1,
    workers: int = 1,
    log: Path | None = None,
    phrasing: str = "templated",
) -> tuple[list[EpisodeResult], dict[str, Any]]:
    """Run ``episodes`` cases ``runs`` times each; results in case order, the runs of a case together.

    Cases come from ``cases`` (cycled) or are generated from seeds ``seed`` .. ``seed+episodes-1``.
    Run ``k`` of case ``c`` renders with depth noise (sigma ``noise_sigma_m``; none when 0) seeded
    by (``seed``, c, k) and reseeds a policy that has ``reseed(seed_sequence)`` (the random policy)
    the same way; physics and the expert are deterministic, so with ``noise_sigma_m`` = 0 the runs
    of the expert are identical.

    ``policy`` is a Policy or a :func:`make_policy` spec; ``workers`` > 1 needs the spec (each
    worker process builds its own policy and SimWorld). ``log`` (a JSON-lines file,
    :class:`EpisodeLog`) makes the evaluation resumable: finished episodes are appended as they
    end and those already in it are not run again. With ``record`` (a folder), each episode is
    also written as a rerun recording (``vla_sim.recorder.EpisodeRecorder``, index case*runs+run).
    """
    from tqdm import tqdm

    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {PHRASINGS}, got {phrasing!r}")
    if episodes < 1 or runs < 1 or workers < 1:
        raise ValueError(f"episodes, runs and workers must be >= 1, got {episodes}, {runs}, {workers}")
    if noise_sigma_m < 0:
        raise ValueError(f"noise_sigma_m must be >= 0, got {noise_sigma_m}")
    if workers > 1 and not isinstance(policy, str):
        raise ValueError("workers > 1 needs the policy as a spec string (each worker builds its own)")
    case_list = CaseSet.load(cases).cases if cases is not None else None
    if case_list is not None and not case_list:
        raise ValueError(f"case file {cases} holds no cases")
    name = policy if isinstance(policy, str) else getattr(policy, "name", type(policy).__name__)
    cfg = {
        "task": task, "split": split, "cases": str(cases) if cases is not None else None, "robot": robot,
        "seed": int(seed), "render_size": list(render_size), "noise_sigma_m": float(noise_sigma_m),
        "renderer": renderer, "runs": runs, "record": record, "phrasing": phrasing,
    }  # fmt: skip
    ep_log = None
    if log is not None:
        ep_log = EpisodeLog(
            log, run_settings(name, task, split, cases, robot, seed, render_size, noise_sigma_m, renderer,
                              phrasing)
        )

    def scene_seed(c: int) -> int:
        return case_list[c % len(case_list)].seed if case_list is not None else int(seed) + c

    done: dict[tuple[int, int], EpisodeResult] = {}
    todo: list[tuple[int, int]] = []
    for c in range(episodes):
        for k in range(runs):
            prev = ep_log.done.get((c, scene_seed(c), k)) if ep_log is not None else None
            if prev is not None:
                done[(c, k)] = prev
            else:
                todo.append((c, k))
    if done:
        logger.warning("resuming from %s: %d of %d episodes already done", log, len(done), episodes * runs)
    bar = tqdm(
        total=len(todo),
        desc=f"{name} {task}/{split}" + (f" (+{len(done)} done before)" if done else ""),
        disable=not progress or not todo,
        unit="ep",
    )

    def finished(c: int, k: int, res: EpisodeResult) -> None:
        done[(c, k)] = res
        if ep_log is not None:
            ep_log.add(c, scene_seed(c), k, res)
        bar.update(1)
        bar.set_postfix(success=f"{sum(r.success for r in done.values())}/{len(done)}")

    try:
        workers = min(workers, len(todo))
        if workers <= 1 and todo:
            runner = _EpisodeRunner(make_policy(policy, seed) if isinstance(policy, str) else policy, cfg)
            try:
                for c, k in todo:
                    finished(c, k, runner.run(c, k))
            finally:
                runner.close()
        elif todo:
            _run_in_workers(policy, cfg, todo, workers, finished)
    finally:
        bar.close()
    results = [done[(c, k)] for c in range(episodes) for k in range(runs)]
    return results, summarize(results, runs)


def _run_in_workers(
    spec: str, cfg: dict[str, Any], todo: list[tuple[int, int]], workers: int, finished: Any
) -> None:
    """Episodes ``todo`` on ``workers`` spawned processes; ``finished(case, run, result)`` as each ends."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(spec, cfg, threads)
    )
    try:
        pending = {pool.submit(_worker_run, c, k): (c, k) for c, k in todo}
        while pending:
            ready, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in ready:
                c, k = pending.pop(fut)
                try:
                    finished(*fut.result())
                except Exception as exc:
                    raise RuntimeError(f"episode case {c} run {k} failed in a worker process: {exc}") from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _recorder(record: Path | None, index: int, scene: Scene, world):
    """The ``--record`` hook: an EpisodeRecorder for this episode, or None."""
    if record is None:
        return None
    from vla_sim.recorder import EpisodeRecorder

    return EpisodeRecorder(Path(record), index, scene, world)


def _check_policy_spec(spec: str) -> None:
    """Fail early (ValueError) on a spec that cannot name a policy, without building the policy."""
    if spec in ("expert", "random"):
        return
    if ":" not in spec:
        raise ValueError(f"unknown policy {spec!r}; use expert, random or package.module:factory")
    mod, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load policy {spec!r}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"{spec!r} is not callable")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla eval``."""
    ap = argparse.ArgumentParser(
        prog="vla eval",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--policy", default="expert", help="expert | random | package.module:factory")
    ap.add_argument("--task", choices=TASKS, default="grasp")
    ap.add_argument("--split", choices=("seen", "unseen", "novel_word"), default="seen")
    ap.add_argument("--episodes", type=int, default=None,
                    help="cases (scenes) to run; default: all cases of --cases, else 10")
    ap.add_argument("--runs", type=int, default=1,
                    help="runs per case, each with its own sensor-noise (and random-policy) seed (default 1)")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker processes, each with its own SimWorld and policy (default 1 = in this "
                         "process; more than the CPU cores only slows it down)")
    ap.add_argument(
        "--cases",
        type=Path,
        default=None,
        help="JSON case file (a Scene or a CaseSet); 'fixed' = the shipped set for task/split",
    )
    ap.add_argument(
        "--out", type=Path, default=None,
        help="output folder (default outputs/eval/<date>_<time>); rerunning the same command with the "
             "same --out resumes: episodes already in its .episodes.jsonl are not run again",
    )
    ap.add_argument("--robot", default="ur5", choices=("ur5", "humanoid_arm"))
    ap.add_argument("--seed", type=int, default=0,
                    help="first scene seed when no case file is given; also seeds noise and policy per run")
    ap.add_argument("--render-size", default="640x480", help="WxH of rendered frames, e.g. 320x240")
    ap.add_argument(
        "--noise-sigma", type=float, default=None,
        help=f"depth noise sigma in metres (default 0 with --runs 1, {DEFAULT_RUN_NOISE_SIGMA_M} with "
             "--runs > 1); with 0 runs differ only through a policy's own randomness (random policy)",
    )
    ap.add_argument("--renderer", choices=("auto", "egl", "tiny"), default="auto")
    ap.add_argument("--phrasing", choices=PHRASINGS, default="templated",
                    help="templated: the cases' own sentences; heldout: each said with a held-out phrasing "
                         f"(set {HELDOUT_SET[-1].upper()} of vla_policy/heldout_phrasings.yaml, same object, "
                         "relation and reference)")
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
    if args.runs <= 0:
        ap.error("--runs must be positive")
    if args.workers <= 0:
        ap.error("--workers must be positive")
    if args.workers > (os.cpu_count() or 1):
        logger.warning("--workers %d > %d CPU cores: they will share them", args.workers, os.cpu_count())
    noise = args.noise_sigma if args.noise_sigma is not None else (
        DEFAULT_RUN_NOISE_SIGMA_M if args.runs > 1 else 0.0)
    if noise < 0:
        ap.error("--noise-sigma must be >= 0")
    try:
        _check_policy_spec(args.policy)
    except ValueError as exc:
        ap.error(str(exc))
    out = args.out or Path("outputs/eval") / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"eval_{args.policy.replace(':', '_').replace('.', '_')}_{args.task}_{args.split}"
    if args.phrasing != "templated":
        stem += f"_{args.phrasing}"
    try:
        results, summary = evaluate(
            args.policy,
            args.task,
            args.split,
            episodes,
            cases,
            args.robot,
            args.seed,
            (w, h),
            noise,
            args.renderer,
            progress=not args.no_progress,
            record=args.record,
            runs=args.runs,
            workers=args.workers,
            log=out / f"{stem}.episodes.jsonl",
            phrasing=args.phrasing,
        )
    except ValueError as exc:
        ap.error(str(exc))
    meta = {
        "policy": args.policy,
        "task": args.task,
        "split": args.split,
        "robot": args.robot,
        "cases": str(cases) if cases else None,
        "seed": args.seed,
        "runs": args.runs,
        "noise_sigma_m": noise,
        "render_size": [w, h],
        "renderer": args.renderer,
        "phrasing": args.phrasing,
    }
    eps = [{"case": i // args.runs, "run": i % args.runs, **asdict(r)} for i, r in enumerate(results)]
    (out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "episodes": eps}, indent=1, default=_json_default)
    )
    table = markdown_table(meta, summary)
    (out / f"{stem}.md").write_text(table)
    print(table, end="")
    print(f"saved {out / stem}.json and .md (episode log: {stem}.episodes.jsonl)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
