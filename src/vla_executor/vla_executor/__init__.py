# SPDX-License-Identifier: Apache-2.0
"""Robot models, IK, motion planning, MoveIt backend and safety for UR5 and a humanoid arm."""
