"""Robot models, IK, motion planning, MoveIt backend and safety for UR5 and a humanoid arm."""
