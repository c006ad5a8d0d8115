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
