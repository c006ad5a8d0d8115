# SPDX-License-Identifier: Apache-2.0
"""Seeded benchmark scenes and JSON case files.

Three tasks, after the papers' protocol (Secondary Realignment Sec. 4 / A2):

- ``grasp``: 15 objects dropped into the workspace from non-overlapping spawn poses with random
  orientations, then settled by physics (a cluttered pile).
- ``place``: 8 objects standing upright on the table, at least 0.1 m apart (more for big ones),
  plus one ``held`` object that starts in the closed gripper; the instruction says where to put it.
- ``pickplace``: a grasp zone on the robot's LEFT (y > 0) with 10 dropped objects and a place zone
  on its RIGHT (y < 0) with 6 upright objects; the instruction names an object on the left and a
  place relative to an object on the right.

``make_scene(task, split, seed)`` is pure numpy (no physics): the same arguments give the same
spawn poses, bit for bit. ``SimWorld.load_scene`` then drops and settles deterministically (step
counts only). A case file stores a scene, its instruction (ground truth for scoring) and the
settled poses, so a replay can be checked against the recording.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_sim import objects as objlib

TASKS = ("grasp", "place", "pickplace")
CASE_VERSION = 1

# Workspace (world frame, metres); the same numbers as vla_sim.world (kept here so scenes need no
# PyBullet import).
WORKSPACE_X = (0.30, 0.75)
WORKSPACE_Y = (-0.35, 0.35)
SPAWN_MARGIN_M = 0.07
# Pick-and-place zones: grasp on the robot's left (+y), place on its right (-y).
GRASP_ZONE_Y = (0.03, 0.35)
PLACE_ZONE_Y = (-0.37, -0.03)

N_GRASP_OBJECTS = 15
N_PLACE_OBJECTS = 8
N_PP_GRASP_OBJECTS = 10
N_PP_PLACE_OBJECTS = 5
MIN_PLACE_SPACING_M = 0.10
DECIMALS = 6  # spawn poses and recorded poses are rounded to 1e-6


@dataclass
class SceneObject:
    """One object of a scene at its spawn pose.

    Attributes:
        name: catalogue name.
        xyz: spawn position of the body origin (bounding-box centre), metres.
        quat_xyzw: spawn orientation.
        rest_on_table: the world moves the object down/up so it starts 1 mm above the table
            (upright placements); False = dropped from ``xyz``.
    """

    name: str
    xyz: tuple[float, float, float]
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    rest_on_table: bool = False


@dataclass
class Scene:
    """A benchmark scene: which objects, where, and (in case files) the instruction.

    Attributes:
        task: ``grasp``, ``place`` or ``pickplace``.
        split: ``seen``, ``unseen`` or ``novel_word`` (the split of the objects asked for).
        seed: the seed ``make_scene`` used.
        objects: objects in spawn order.
        held: place task only: the object that starts in the closed gripper.
        instruction: the instruction as a dict (see ``vla_sim.instructions.Instruction.to_dict``);
            ground truth for scoring, never given to a policy.
        settled: recorded settled poses {name: [x, y, z, qx, qy, qz, qw]} to check replays against.
    """

    task: str
    split: str
    seed: int
    objects: list[SceneObject]
    held: str | None = None
    instruction: dict[str, Any] | None = None
    settled: dict[str, list[float]] | None = None
    version: int = CASE_VERSION

    @property
    def names(self) -> list[str]:
        """Object names in spawn order (the held object excluded)."""
        return [o.name for o in self.objects]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        """Inverse of :meth:`to_dict`, with errors that name the bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"a scene must be a JSON object, got {type(d).__name__}")
        missing = {"task", "split", "seed", "objects"} - set(d)
        if missing:
            raise ValueError(f"scene is missing {sorted(missing)}; was it written by Scene.save?")
        if d["task"] not in TASKS:
            raise ValueError(f"scene task must be one of {TASKS}, got {d['task']!r}")
        if d.get("version", CASE_VERSION) > CASE_VERSION:
            raise ValueError(
                f"scene version {d['version']} is newer than this code ({CASE_VERSION}); update vla_sim"
            )
        objs = []
        for i, o in enumerate(d["objects"]):
            try:
                objlib.get(o["name"])
                objs.append(
                    SceneObject(
                        o["name"],
                        tuple(float(v) for v in o["xyz"]),
                        tuple(float(v) for v in o.get("quat_xyzw", (0, 0, 0, 1))),
                        bool(o.get("rest_on_table", False)),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"scene object #{i} is invalid: {exc}") from exc
        return cls(
            d["task"],
            d["split"],
            int(d["seed"]),
            objs,
            d.get("held"),
            d.get("instruction"),
            d.get("settled"),
            int(d.get("version", CASE_VERSION)),
        )

    def save(self, path: Path) -> Path:
        """Write the scene as one JSON case file (floats are written exactly: repr round-trips)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Scene:
        """Read a case file written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read scene case file {path}: {exc}") from exc
        return cls.from_dict(data)


@dataclass
class CaseSet:
    """A fixed list of cases (one JSON file), e.g. ``cases/grasp_seen.json``."""

    name: str
    cases: list[Scene] = field(default_factory=list)

    def save(self, path: Path) -> Path:
        """Write all cases into one JSON file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"name": self.name, "version": CASE_VERSION, "cases": [c.to_dict() for c in self.cases]}
        path.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> CaseSet:
        """Read a case set; a file holding a single scene is accepted as a set of one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read case file {path}: {exc}") from exc
        if isinstance(data, dict) and "cases" in data:
            return cls(str(data.get("name", path.stem)), [Scene.from_dict(c) for c in data["cases"]])
        return cls(path.stem, [Scene.from_dict(data)])


CASES_DIR = Path(__file__).parent / "cases"


def case_path(task: str, split: str) -> Path:
    """Path of the shipped fixed case set for a task and split."""
    return CASES_DIR / f"{task}_{split}.json"


# ---------------------------------------------------------------------------------------------
def _random_quat(rng: np.random.Generator) -> tuple[float, float, float, float]:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return tuple(_r(v) for v in q)


def _yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, _r(math.sin(yaw / 2)), _r(math.cos(yaw / 2)))


def _r(v: float) -> float:
    """Round to 1e-6 so case files stay small.

    The rounded value is what the physics uses, so replays stay exact.
    """
    return round(float(v), DECIMALS)


def _pool(split: str, grasp_only: bool = True) -> list[objlib.ObjectSpec]:
    """Objects a scene of this split draws from (grasp targets only unless told otherwise)."""
    if split == "seen":
        pool = objlib.by_split("seen")
    elif split == "unseen":
        pool = objlib.by_split("unseen")
    elif split == "novel_word":
        pool = objlib.by_split("novel_word") + objlib.by_split("unseen")
    else:
        raise ValueError(f"unknown split {split!r}; choose seen, unseen or novel_word")
    return [o for o in pool if o.grasp_target or not grasp_only]


def _drop_poses(
    rng: np.random.Generator,
    specs: list[objlib.ObjectSpec],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> list[SceneObject]:
    """Drop poses: random xy and orientation, no initial interpenetration.

    z stacks each object above those it would overlap (bounding spheres).
    """
    placed: list[tuple[np.ndarray, float]] = []  # (centre (3,), radius)
    out = []
    for spec in specs:
        r = 0.5 * float(np.linalg.norm(spec.size_m))
        xy = np.array([rng.uniform(*x_range), rng.uniform(*y_range)])
        z = r + 0.005
        for c, rc in placed:
            if np.linalg.norm(c[:2] - xy) < r + rc:
                z = max(z, c[2] + rc + r + 0.005)
        centre = np.array([xy[0], xy[1], z])
        placed.append((centre, r))
        out.append(SceneObject(spec.name, tuple(_r(v) for v in centre), _random_quat(rng)))
    return out


def _upright_poses(
    rng: np.random.Generator,
    specs: list[objlib.ObjectSpec],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    min_spacing: float = MIN_PLACE_SPACING_M,
    max_restarts: int = 200,
) -> list[SceneObject]:
    """Upright objects with random yaw, centres >= ``min_spacing`` apart.

    Footprints (circumscribed circles) keep a 2 cm gap. Big objects are placed first; the whole
    layout is redrawn when one does not fit (rejection sampling, deterministic for a given rng).
    """
    radii = [0.5 * float(np.hypot(s.size_m[0], s.size_m[1])) for s in specs]
    order = sorted(range(len(specs)), key=lambda i: -radii[i])
    for _ in range(max_restarts):
        placed: dict[int, np.ndarray] = {}
        for i in order:
            r = radii[i]
            for _ in range(50):
                xy = np.array(
                    [
                        rng.uniform(x_range[0] + r * 0.5, x_range[1] - r * 0.5),
                        rng.uniform(y_range[0] + r * 0.5, y_range[1] - r * 0.5),
                    ]
                )
                if all(
                    np.linalg.norm(xy - c) >= max(min_spacing, r + radii[j] + 0.02) for j, c in placed.items()
                ):
                    placed[i] = xy
                    break
            else:
                break
        if len(placed) == len(specs):
            break
    else:
        raise RuntimeError(
            f"could not place {[s.name for s in specs]} with {min_spacing} m spacing; "
            "use fewer or smaller objects"
        )
    out = []
    for i, spec in enumerate(specs):
        xy = placed[i]
        z = 0.5 * float(spec.size_m[2]) + 0.001
        out.append(
            SceneObject(
                spec.name,
                (_r(xy[0]), _r(xy[1]), _r(z)),
                _yaw_quat(rng.uniform(-math.pi, math.pi)),
                rest_on_table=True,
            )
        )
    return out


def _place_references(
    rng: np.random.Generator, n: int, pool: list[objlib.ObjectSpec], exclude: set[str]
) -> list[objlib.ObjectSpec]:
    """``n`` objects for a place area.

    One 'in' container and one 'on' support from the seen supports (so every relation can be
    asked), the rest from ``pool``.
    """
    supports = [o for o in objlib.by_split("seen") if o.supports]
    ins = [o for o in supports if o.supports == "in"]
    ons = [o for o in supports if o.supports == "on"]
    chosen = [ins[rng.integers(len(ins))], ons[rng.integers(len(ons))]]
    rest = [o for o in pool if o.name not in exclude and o not in chosen]
    idx = rng.choice(len(rest), size=n - len(chosen), replace=False)
    chosen += [rest[i] for i in sorted(idx)]
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def make_scene(task: str, split: str, seed: int) -> Scene:
    """A seeded scene (spawn poses only; no physics). Same arguments -> same scene, bit for bit.

    Args:
        task: ``grasp``, ``place`` or ``pickplace``.
        split: ``seen``, ``unseen`` or ``novel_word``.
        seed: any non-negative integer.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([int(seed), TASKS.index(task), ("seen", "unseen", "novel_word").index(split)])
    pool = _pool(split)
    m = SPAWN_MARGIN_M
    x_in = (WORKSPACE_X[0] + m, WORKSPACE_X[1] - m)
    if task == "grasp":
        n = min(N_GRASP_OBJECTS, len(pool))
        if split == "novel_word":  # make sure novel-word objects are in the scene
            novel = objlib.by_split("novel_word")
            others = [o for o in pool if o.split != "novel_word"]
            idx = rng.choice(len(others), size=n - len(novel), replace=False)
            specs = novel + [others[i] for i in sorted(idx)]
            specs = [specs[i] for i in rng.permutation(len(specs))]
        else:
            specs = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
        objs = _drop_poses(rng, specs, x_in, (WORKSPACE_Y[0] + m, WORKSPACE_Y[1] - m))
        return Scene(task, split, int(seed), objs)
    x_place = (WORKSPACE_X[0] + 0.03, WORKSPACE_X[1] - 0.03)
    if task == "place":
        held = pool[rng.integers(len(pool))]
        objs = _upright_layout(
            rng, N_PLACE_OBJECTS, pool, {held.name}, x_place, (WORKSPACE_Y[0] + 0.05, WORKSPACE_Y[1] - 0.05)
        )
        return Scene(task, split, int(seed), objs, held=held.name)
    # pickplace
    g_idx = rng.choice(len(pool), size=N_PP_GRASP_OBJECTS, replace=False)
    g_specs = [pool[i] for i in g_idx]
    objs = _drop_poses(
        rng,
        g_specs,
        (WORKSPACE_X[0] + 0.03, WORKSPACE_X[1] - 0.03),
        (GRASP_ZONE_Y[0] + 0.03, GRASP_ZONE_Y[1] - 0.02),
    )
    objs += _upright_layout(rng, N_PP_PLACE_OBJECTS, pool, {s.name for s in g_specs}, x_place, PLACE_ZONE_Y)
    return Scene(task, split, int(seed), objs)


def _upright_layout(
    rng: np.random.Generator,
    n: int,
    pool: list[objlib.ObjectSpec],
    exclude: set[str],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> list[SceneObject]:
    """Choose ``n`` place-area objects and lay them out; draw another set when they do not fit."""
    for _ in range(50):
        specs = _place_references(rng, n, pool, exclude)
        try:
            return _upright_poses(rng, specs, x_range, y_range, max_restarts=40)
        except RuntimeError:
            continue
    raise RuntimeError(f"no layout of {n} objects fits x {x_range} y {y_range}")


def _pose_list(T: np.ndarray) -> list[float]:
    from vla_common.transforms import matrix_to_quat

    return [_r(v) for v in T[:3, 3]] + [_r(v) for v in matrix_to_quat(T)]


def make_case(world: Any, task: str, split: str, seed: int) -> Scene:
    """A complete case: seeded scene, instruction and recorded settled poses.

    The scene is loaded and settled in ``world`` (a SimWorld); the instruction is seeded too.

    Place regions are computed from the settled reference boxes, so this needs the physics.
    """
    from vla_sim import instructions as ins

    scene = make_scene(task, split, seed)
    settled = world.load_scene(scene)
    names = list(settled)
    rng = np.random.default_rng([int(seed), 7, TASKS.index(task)])
    if task == "grasp":
        want = split if any(objlib.get(n).split == split for n in names) else None
        # novel-word cases name the object (its name is the word never seen in training)
        kind = "name" if split == "novel_word" else None
        instr = ins.grasp_instruction(rng, names, split=want, kind=kind)
    else:
        if task == "place":  # the held object is no place reference (it is in the gripper)
            held, refs = scene.held, [n for n in names if n != scene.held]
        else:
            left = [n for n in names if settled[n][1, 3] > 0.0 and objlib.get(n).grasp_target]
            want = [n for n in left if objlib.get(n).split == split] or left
            held = want[rng.integers(len(want))]
            refs = [n for n in names if settled[n][1, 3] < 0.0]
        instr = _feasible_place_instruction(world, rng, held, refs, task)
    scene.instruction = instr.to_dict()
    scene.settled = {n: _pose_list(T) for n, T in settled.items()}
    return scene


def _feasible_place_instruction(world: Any, rng: np.random.Generator, held: str, refs: list[str], task: str):
    """A place instruction whose region has room for the held object.

    Relations are tried in random order, references in random order; a (relation, reference)
    pair is kept when the region holds a free spot for the object's footprint (the expert's
    ``place_points``), so no case asks for the impossible.
    """
    from vla_sim import instructions as ins
    from vla_sim.expert import place_points

    pts = objlib.get(held).surface_points()  # (N, 3) upright, about the body origin
    radius = float(np.max(np.linalg.norm(pts[:, :2], axis=1)))
    for k in rng.permutation(len(ins.RELATIONS)):
        relation = ins.RELATIONS[k]
        fits = [r for r in refs if relation in ins.valid_relations(r, held)]
        for j in rng.permutation(len(fits)):
            ref = fits[j]
            region = ins.Region(relation, ref, *(tuple(float(v) for v in a) for a in world.object_aabb(ref)))
            if place_points(world, region, held, radius):
                return ins.place_instruction(rng, held, ref, world.object_aabb(ref), relation, task=task)
    raise RuntimeError(f"no feasible place instruction for {held!r} among {refs}")


FIXED_CASE_SEEDS = range(1000, 1020)  # the shipped case sets use these seeds (20 per task and split)


def write_fixed_cases(out_dir: Path = CASES_DIR, robot: str = "ur5", seeds=FIXED_CASE_SEEDS) -> list[Path]:
    """Regenerate the shipped case sets ``cases/<task>_<split>.json`` (seen and unseen)."""
    from vla_sim.world import SimWorld

    paths = []
    with SimWorld(robot=robot, renderer="tiny", render_size=(64, 48)) as world:
        for task in TASKS:
            for split in ("seen", "unseen"):
                cases = [make_case(world, task, split, s) for s in seeds]
                paths.append(CaseSet(f"{task}_{split}", cases).save(Path(out_dir) / f"{task}_{split}.json"))
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_sim.scenes --write-cases``: regenerate the fixed case sets."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--write-cases", action="store_true", required=True)
    ap.add_argument("--out", type=Path, default=CASES_DIR)
    ap.add_argument("--robot", default="ur5")
    args = ap.parse_args(argv)
    for p in write_fixed_cases(args.out, args.robot):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
