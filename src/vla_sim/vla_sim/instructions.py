# SPDX-License-Identifier: Apache-2.0
"""Template instructions with their ground truth (for scoring only; never shown to a policy).

Grasp instructions name the target by name, category, colour + shape, or function (the A2/VLG
template families, Secondary Realignment Sec. 4). Every object in the scene that fits the
description is an acceptable target (``Instruction.targets``).

Place instructions put an object in a relation to a reference object. Each relation is a region
of the table defined geometrically from the reference's axis-aligned bounding box (AABB) at the
time the instruction is made. With ``gap`` = the horizontal distance from the placed object's
centre to the reference's AABB footprint (0 inside it):

================  ===============================================================================
``in``            containers: centre inside the inner footprint (AABB shrunk by 1.5 cm) and the
                  object's bottom below the rim.
``on``            supports: centre inside the footprint shrunk by 1 cm and the object's bottom at
                  or above the support's top minus 1.5 cm (resting on it).
``next to``       0 < gap <= 0.10 m.
``near``          0 < gap <= 0.15 m.
``around``        0 < gap <= 0.20 m.
``left of``       centre at larger y than the footprint (the robot's left, +y), within 5 cm of
                  its x extent, gap <= 0.25 m.
``right of``      the same towards -y.
``in front of``   centre at smaller x (nearer the robot), within 5 cm of the y extent, gap <= 0.25.
``behind``        the same towards +x (farther from the robot).
================  ===============================================================================

The object must also be at rest (checked by ``vla_sim.checks``). Outside relations never count an
object resting on top of the reference (gap > 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_sim import objects as objlib

RELATIONS = ("on", "in", "near", "around", "next to", "left of", "right of", "in front of", "behind")
GRASP_KINDS = ("name", "category", "colour_shape", "function")
GRASP_KIND_P = (0.4, 0.2, 0.2, 0.2)

GRASP_TEMPLATES = {
    "name": ("pick up the {name}", "grasp the {name}", "give me the {name}"),
    "category": ("pick up a {category}", "I need a {category}", "grasp a {category}"),
    "colour_shape": ("grasp the {colour} {shape} object", "I want a {colour} {shape} object"),
    "function": ("get me {function}", "I need {function}"),
}
PLACE_TEMPLATES = (
    "put it {relation} the {reference}",
    "place this {relation} the {reference}",
    "move the object {relation} the {reference}",
)
PICKPLACE_TEMPLATES = (
    "put the {name} {relation} the {reference}",
    "place the {name} {relation} the {reference}",
    "move the {name} {relation} the {reference}",
)

_GAP_MAX = {
    "next to": 0.10,
    "near": 0.15,
    "around": 0.20,
    "left of": 0.25,
    "right of": 0.25,
    "in front of": 0.25,
    "behind": 0.25,
}
SIDE_SLACK_M = 0.05
IN_WALL_M = 0.015
ON_SHRINK_M = 0.01
ON_Z_SLACK_M = 0.015


@dataclass
class Region:
    """Where a placed object must come to rest, relative to a reference object.

    Attributes:
        relation: one of RELATIONS.
        reference: reference object name.
        ref_min: (3,) world AABB minimum of the reference when the instruction was made.
        ref_max: (3,) world AABB maximum.
    """

    relation: str
    reference: str
    ref_min: tuple[float, float, float]
    ref_max: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; choose one of {RELATIONS}")

    def gap(self, xy: np.ndarray) -> float:
        """Horizontal distance (m) from a point to the reference footprint (0 inside)."""
        lo, hi = np.asarray(self.ref_min[:2]), np.asarray(self.ref_max[:2])
        d = np.maximum(np.maximum(lo - xy, xy - hi), 0.0)
        return float(np.linalg.norm(d))

    def contains(self, centre: np.ndarray, bottom_z: float) -> bool:
        """Whether an object is in the region.

        Args:
            centre: (3,) object centre in the world.
            bottom_z: its lowest point (m). The at-rest condition is checked separately.
        """
        c = np.asarray(centre, dtype=np.float64)
        lo, hi = np.asarray(self.ref_min), np.asarray(self.ref_max)
        rel = self.relation
        if rel == "in":
            inside = np.all(c[:2] > lo[:2] + IN_WALL_M) and np.all(c[:2] < hi[:2] - IN_WALL_M)
            return bool(inside and bottom_z < hi[2])
        if rel == "on":
            inside = np.all(c[:2] > lo[:2] + ON_SHRINK_M) and np.all(c[:2] < hi[:2] - ON_SHRINK_M)
            return bool(inside and bottom_z >= hi[2] - ON_Z_SLACK_M)
        g = self.gap(c[:2])
        if g <= 0.0 or g > _GAP_MAX[rel]:
            return False
        if rel in ("next to", "near", "around"):
            return True
        x_beside = lo[0] - SIDE_SLACK_M <= c[0] <= hi[0] + SIDE_SLACK_M
        y_beside = lo[1] - SIDE_SLACK_M <= c[1] <= hi[1] + SIDE_SLACK_M
        if rel == "left of":
            return bool(c[1] > hi[1] and x_beside)
        if rel == "right of":
            return bool(c[1] < lo[1] and x_beside)
        if rel == "in front of":
            return bool(c[0] < lo[0] and y_beside)
        return bool(c[0] > hi[0] and y_beside)  # behind

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "relation": self.relation,
            "reference": self.reference,
            "ref_min": [float(v) for v in self.ref_min],
            "ref_max": [float(v) for v in self.ref_max],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Region:
        """Inverse of :meth:`to_dict`."""
        return cls(d["relation"], d["reference"], tuple(d["ref_min"]), tuple(d["ref_max"]))


@dataclass
class Instruction:
    """A natural-language instruction and its ground truth.

    Attributes:
        text: what the user says (the only field a policy may see).
        task: ``grasp``, ``place`` or ``pickplace``.
        target: the object to grasp (grasp/pickplace; the one the generator chose) or the held
            object to place (place).
        region: where to put it (place/pickplace), else None.
        targets: every object that satisfies the grasp description (scoring accepts any of them).
        kind: template family (``name``, ``category``, ``colour_shape``, ``function`` or the relation).
    """

    text: str
    task: str
    target: str
    region: Region | None = None
    targets: tuple[str, ...] = field(default=())
    kind: str = "name"

    def __post_init__(self) -> None:
        if not self.targets:
            self.targets = (self.target,)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (stored in case files)."""
        return {
            "text": self.text,
            "task": self.task,
            "target": self.target,
            "targets": list(self.targets),
            "kind": self.kind,
            "region": self.region.to_dict() if self.region else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Instruction:
        """Inverse of :meth:`to_dict`."""
        region = Region.from_dict(d["region"]) if d.get("region") else None
        return cls(
            d["text"], d["task"], d["target"], region, tuple(d.get("targets") or ()), d.get("kind", "name")
        )


def _articles(text: str) -> str:
    """'a orange' -> 'an orange'."""
    return re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", text)


def _matching(kind: str, target: objlib.ObjectSpec, names: list[str]) -> tuple[str, ...]:
    """All scene objects that fit the target's description of this kind."""
    specs = [objlib.get(n) for n in names]
    if kind == "name":
        ok = [s for s in specs if s.name == target.name]
    elif kind == "category":
        ok = [s for s in specs if s.category == target.category]
    elif kind == "colour_shape":
        ok = [s for s in specs if s.colour.name == target.colour.name and s.shape == target.shape]
    else:
        ok = [s for s in specs if s.function == target.function]
    return tuple(s.name for s in ok)


def grasp_instruction(
    rng: np.random.Generator,
    names: list[str],
    target: str | None = None,
    kind: str | None = None,
    split: str | None = None,
) -> Instruction:
    """A grasp instruction about one of ``names`` (the scene's objects).

    Args:
        rng: random generator (seeded by the caller).
        names: objects present in the scene.
        target: the object to ask for; random among grasp targets (of ``split`` if given) if None.
        kind: template family; random with GRASP_KIND_P if None.
        split: restrict the random target to this split.
    """
    if target is None:
        cands = [
            n for n in names if objlib.get(n).grasp_target and (split is None or objlib.get(n).split == split)
        ]
        if not cands:
            raise ValueError(f"no graspable {split or ''} target among {names}")
        target = cands[rng.integers(len(cands))]
    spec = objlib.get(target)
    if kind is None:
        kind = GRASP_KINDS[rng.choice(len(GRASP_KINDS), p=GRASP_KIND_P)]
    templates = GRASP_TEMPLATES[kind]
    text = templates[rng.integers(len(templates))].format(
        name=spec.name,
        category=spec.category,
        colour=spec.colour.name,
        shape=spec.shape,
        function=spec.function,
    )
    return Instruction(_articles(text), "grasp", target, None, _matching(kind, spec, names), kind)


def valid_relations(reference: str, held: str | None = None) -> tuple[str, ...]:
    """Relations that make sense for a reference object.

    ``in`` needs a container, ``on`` a support; with ``held`` given, the held object's upright
    footprint must also fit (inside the container's walls, or on the support's top).
    """
    ref = objlib.get(reference)
    out = [r for r in RELATIONS if r not in ("in", "on")]
    foot = None if held is None else float(max(objlib.get(held).size_m[:2]))
    if ref.supports == "in":
        inner = (
            float(min(ref.size_m[:2])) - 2 * ref.geometry.size[3] if ref.geometry.kind == "open_box" else 0.0
        )
        if foot is None or foot <= inner - 0.01:
            out.insert(0, "in")
    elif ref.supports == "on":
        if foot is None or foot <= float(min(ref.size_m[:2])) + 0.02:
            out.insert(0, "on")
    return tuple(out)


def place_instruction(
    rng: np.random.Generator,
    held: str,
    reference: str,
    ref_aabb: tuple[np.ndarray, np.ndarray],
    relation: str | None = None,
    task: str = "place",
) -> Instruction:
    """A place (or pick-and-place) instruction: put ``held`` in ``relation`` to ``reference``.

    Args:
        rng: random generator.
        held: the object to place (for pickplace: the one to grasp first).
        reference: reference object name.
        ref_aabb: (min (3,), max (3,)) world AABB of the reference now.
        relation: one of ``valid_relations(reference)``; random if None.
        task: ``place`` or ``pickplace``.
    """
    rels = valid_relations(reference, held)
    if relation is None:
        relation = rels[rng.integers(len(rels))]
    elif relation not in rels:
        raise ValueError(f"relation {relation!r} does not fit {reference!r}; valid: {rels}")
    region = Region(
        relation,
        reference,
        tuple(round(float(v), 6) for v in ref_aabb[0]),
        tuple(round(float(v), 6) for v in ref_aabb[1]),
    )
    templates = PLACE_TEMPLATES if task == "place" else PICKPLACE_TEMPLATES
    text = templates[rng.integers(len(templates))].format(relation=relation, reference=reference, name=held)
    return Instruction(text, task, held, region, (held,), relation)
