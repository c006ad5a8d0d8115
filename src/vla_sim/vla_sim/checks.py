# SPDX-License-Identifier: Apache-2.0
"""Physical success checks of the benchmark (Secondary Realignment Sec. 4 protocol, executed).

- Grasp: the target is held between both pads and lifted >= 10 cm above where it was before
  the attempt. An episode allows <= 8 attempts; a grasped non-target is removed from the scene
  and the attempt still counts as a planning step.
- Place: after release, the object comes to rest (checked over at most 2 s of simulated time)
  inside the relation's region (``vla_sim.instructions.Region``). One attempt.
- Pick-and-place: both, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_sim.instructions import Region

LIFT_SUCCESS_M = 0.10
MAX_GRASP_ATTEMPTS = 8
REST_MAX_STEPS = 480


@dataclass
class GraspCheck:
    """Outcome of one grasp attempt.

    Attributes:
        lifted: objects held and raised >= 10 cm.
        success: a target is among ``lifted``.
        wrong: non-targets among ``lifted`` (to be removed).
    """

    lifted: list[str]
    success: bool
    wrong: list[str]


def object_heights(world) -> dict[str, float]:
    """Z of every object's body origin now (metres)."""
    return {n: float(world.object_pose(n)[2, 3]) for n in world.object_ids}


def check_grasp(
    world, targets: tuple[str, ...] | list[str], z_before: dict[str, float], held: list[str] | None = None
) -> GraspCheck:
    """Which objects are held and lifted >= 10 cm relative to ``z_before``.

    Args:
        world: the SimWorld after the lift.
        targets: acceptable target names.
        z_before: heights before the attempt (``object_heights``).
        held: names between the pads now (default: asked from the robot).
    """
    if held is None:
        held = [n for n, b in world.object_ids.items() if world.robot.holds(b)]
    lifted = [n for n in held if n in z_before and world.object_pose(n)[2, 3] - z_before[n] >= LIFT_SUCCESS_M]
    success = any(n in targets for n in lifted)
    return GraspCheck(lifted, success, [n for n in lifted if n not in targets])


def wait_until_still(world, names: list[str], max_steps: int = REST_MAX_STEPS) -> bool:
    """Step until the listed objects are still (see SimWorld.all_still); False if they never are."""
    still, taken = 0, 0
    while taken < max_steps:
        world.step(8)
        taken += 8
        still = still + 1 if world.all_still(names) else 0
        if still >= 3:
            return True
    return False


def in_region(world, name: str, region: Region) -> bool:
    """Whether object ``name`` is inside ``region`` now (centre and bottom from physics)."""
    lo, _ = world.object_aabb(name)
    centre = world.object_pose(name)[:3, 3]
    return region.contains(centre, float(lo[2]))


def check_place(world, name: str, region: Region) -> tuple[bool, bool]:
    """(success, at_rest): the released object rests inside the region.

    Steps the world (at most 2 s) to let the object come to rest first.
    """
    if name not in world.object_ids:
        return False, False
    rest = wait_until_still(world, [name])
    if world.robot is not None and world.robot.holds(world.object_ids[name]):
        return False, rest  # still in the gripper: not placed
    return bool(rest and in_region(world, name, region)), rest


def gap_to_region_m(world, name: str, region: Region) -> float:
    """Diagnostic: horizontal distance of the object's centre to the reference footprint."""
    return region.gap(np.asarray(world.object_pose(name)[:2, 3]))


@dataclass
class Verdict:
    """The simulator's judgement of one free-text demo episode, for the person watching.

    Attributes:
        label: ``SUCCESS``, ``WRONG OBJECT``, ``NOTHING LIFTED``, ``CORRECTLY REFUSED`` or
            ``WRONGLY REFUSED``.
        sentence: what to print first ("SUCCESS: lifted the red mug").
        ok: whether the robot did what it was told.
        targets: the scene objects the instruction's object phrase describes (catalogue view).
    """

    label: str
    sentence: str
    ok: bool
    targets: list[str]


def judge_grasp(instruction: str, scene_objects: list[str], lifted: list[str], refused: str = "") -> Verdict:
    """Judge what was lifted against what the instruction asked for, with the simulator's knowledge.

    The instruction is read with the stack's parser (``vla_common.language``) and its object phrase
    grounded on the catalogue entries of the scene's objects; ``lifted`` are the objects the
    simulator saw raised >= 10 cm (``object_lifted`` events); ``refused`` is the policy's reason when
    it refused (target not found, not understood), else "". Placement is not judged here (the demo
    sees only events; ``vla eval`` checks it in physics).
    """
    from vla_common.language import NotUnderstood, parse_instruction, phrase_referents
    from vla_sim import objects as objlib

    vocab = [{"name": s.name, "colour": s.colour.name, "shape": s.shape, "category": s.category,
              "function": s.function} for s in (objlib.get(n) for n in scene_objects)]
    try:
        phrase = parse_instruction(instruction).object
    except NotUnderstood:
        phrase = None
    targets = [vocab[i]["name"] for i in phrase_referents(phrase, vocab)[0]] if phrase else []
    wanted = f"the {phrase}" if phrase else "nothing this scene holds"
    if not targets:
        if lifted:
            return Verdict("WRONG OBJECT", f"WRONG OBJECT: lifted the {lifted[-1]}, but the scene has "
                           f"{wanted if phrase else 'nothing the instruction names'}", False, targets)
        return Verdict("CORRECTLY REFUSED", f"CORRECTLY REFUSED: the scene has no {phrase or 'such object'}"
                       f"{f' ({refused})' if refused else ''}", True, targets)
    if lifted and lifted[-1] in targets:
        return Verdict("SUCCESS", f"SUCCESS: lifted the {lifted[-1]}", True, targets)
    if lifted:
        return Verdict("WRONG OBJECT", f"WRONG OBJECT: lifted the {lifted[-1]}, asked for {wanted}", False,
                       targets)
    if refused:
        return Verdict("WRONGLY REFUSED", f"WRONGLY REFUSED: {wanted} is in the scene ({refused})", False,
                       targets)
    return Verdict("NOTHING LIFTED", f"NOTHING LIFTED: asked for {wanted}", False, targets)


def place_report(world, name: str, relation: str, references: list[str],
                 ref_boxes: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """The simulator's placement check of ``name`` (``check_place``), as a JSON-able report.

    Regions are built from each reference's box in ``ref_boxes`` (its AABB when the scene was
    loaded, as ``vla eval``'s instructions do), else from its AABB now. The object counts as placed
    when it rests inside the region of any listed reference (every object fitting the reference
    phrase is acceptable).

    Returns:
        ``{"object", "relation", "success", "at_rest", "held", "centre": (3,), "references":
        {ref: {"success", "gap_m"}}, "detail"}``.
    """
    out: dict = {"object": name, "relation": relation, "success": False, "at_rest": False, "held": False,
                 "centre": None, "references": {}, "detail": ""}
    if name not in world.object_ids:
        out["detail"] = f"{name} is not in the scene"
        return out
    for ref in references:
        box = ref_boxes.get(ref)
        if box is None and ref in world.object_ids:
            box = world.object_aabb(ref)
        if box is None:
            continue
        region = Region(relation, ref, tuple(float(v) for v in box[0]), tuple(float(v) for v in box[1]))
        ok, rest = check_place(world, name, region)
        out["references"][ref] = {"success": bool(ok), "gap_m": gap_to_region_m(world, name, region)}
        out["success"] = bool(out["success"] or ok)
        out["at_rest"] = bool(rest)
    out["held"] = bool(world.robot is not None and world.robot.holds(world.object_ids[name]))
    out["centre"] = [float(v) for v in world.object_pose(name)[:3, 3]]
    return out


def judge_place(instruction: str, scene_objects: list[str], moved: str | None, report: dict | None,
                lifted: list[str] | None = None, refused: str = "") -> Verdict:
    """Judge a place or pick-and-place episode with the simulator's placement check.

    Args:
        instruction: what the person said (read with ``vla_common.language``).
        scene_objects: the scene's objects (held object included).
        moved: the object that was to be put down: the held object of a place scene, the last
            lifted object of a pick-and-place (None when nothing was lifted).
        report: :func:`place_report` for ``moved`` (None when the simulator was not asked).
        lifted: objects the simulator saw lifted (pick-and-place).
        refused: the policy's reason when it refused, else "".

    Labels: ``SUCCESS`` ("SUCCESS: placed the red mug on the plate"), ``WRONG PLACE``, ``WRONG
    OBJECT``, ``NOTHING LIFTED``, ``CORRECTLY REFUSED``, ``WRONGLY REFUSED``, ``NOT JUDGED``.
    """
    from vla_common.language import NotUnderstood, parse_instruction, phrase_referents
    from vla_sim import objects as objlib

    vocab = [{"name": s.name, "colour": s.colour.name, "shape": s.shape, "category": s.category,
              "function": s.function} for s in (objlib.get(n) for n in scene_objects)]
    lifted = list(lifted or [])
    try:
        parsed = parse_instruction(instruction)
    except NotUnderstood:
        parsed = None
    if parsed is None or parsed.kind == "grasp":
        return judge_grasp(instruction, scene_objects, lifted, refused)
    refs = [vocab[i]["name"] for i in phrase_referents(parsed.reference, vocab)[0]]
    targets = ([vocab[i]["name"] for i in phrase_referents(parsed.object, vocab)[0]] if parsed.object
               else [moved] if moved else [])
    where = f"{parsed.relation} the {parsed.reference}"
    if not refs or not targets:
        missing = f"the {parsed.reference}" if not refs else f"the {parsed.object}"
        if parsed.kind == "pickplace" and lifted:
            return Verdict("WRONG OBJECT", f"WRONG OBJECT: lifted the {lifted[-1]}, but the scene has no "
                           f"{missing[4:]}", False, targets)
        return Verdict("CORRECTLY REFUSED", f"CORRECTLY REFUSED: the scene has no {missing[4:]}"
                       f"{f' ({refused})' if refused else ''}", True, targets)
    if parsed.kind == "pickplace":
        if not lifted:
            if refused:
                return Verdict("WRONGLY REFUSED", f"WRONGLY REFUSED: the {parsed.object} and the "
                               f"{parsed.reference} are in the scene ({refused})", False, targets)
            return Verdict("NOTHING LIFTED", f"NOTHING LIFTED: asked to put the {parsed.object} {where}",
                           False, targets)
        if lifted[-1] not in targets:
            return Verdict("WRONG OBJECT", f"WRONG OBJECT: lifted the {lifted[-1]}, asked for the "
                           f"{parsed.object}", False, targets)
    if report is None or moved is None:
        if refused:
            return Verdict("WRONGLY REFUSED", f"WRONGLY REFUSED: the {parsed.reference} is in the scene "
                           f"({refused})", False, targets)
        return Verdict("NOT JUDGED", f"NOT JUDGED: the simulator gave no placement check for {where}",
                       False, targets)
    if report.get("success"):
        ref = next((r for r, v in report.get("references", {}).items() if v.get("success")), parsed.reference)
        return Verdict("SUCCESS", f"SUCCESS: placed the {moved} {parsed.relation} the {ref}", True, targets)
    if report.get("held"):
        why = "is still in the gripper"
    elif not report.get("at_rest"):
        why = "did not come to rest"
    else:
        gaps = [v.get("gap_m", 0.0) for v in report.get("references", {}).values()]
        gap = min(gaps) if gaps else 0.0
        if gap > 0:
            why = f"rests {gap * 100:.0f} cm from the {parsed.reference}"
        elif parsed.relation in ("in", "on"):
            why = f"rests over the {parsed.reference} but not {parsed.relation} it"
        else:
            why = f"rests on the {parsed.reference}"
    if refused:
        return Verdict("WRONGLY REFUSED", f"WRONGLY REFUSED: the {parsed.reference} is in the scene "
                       f"({refused}); the {moved} {why}", False, targets)
    return Verdict("WRONG PLACE", f"WRONG PLACE: the {moved} {why}, asked for {where}", False, targets)


def place_question(instruction: str, scene_objects: list[str], moved: str | None) -> dict | None:
    """What to ask the simulator about a place instruction: ``{"object", "relation", "references"}``.

    ``references`` are every scene object the reference phrase describes; None when the sentence
    asks for no placement, names no reference in the scene, or nothing is to be put down.
    """
    from vla_common.language import NotUnderstood, parse_instruction, phrase_referents
    from vla_sim import objects as objlib

    try:
        parsed = parse_instruction(instruction)
    except NotUnderstood:
        return None
    if parsed.kind == "grasp" or not moved:
        return None
    vocab = [{"name": s.name, "colour": s.colour.name, "shape": s.shape, "category": s.category,
              "function": s.function} for s in (objlib.get(n) for n in scene_objects)]
    refs = [vocab[i]["name"] for i in phrase_referents(parsed.reference, vocab)[0]]
    return {"object": moved, "relation": parsed.relation, "references": refs} if refs else None
