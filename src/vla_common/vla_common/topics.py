# SPDX-License-Identifier: Apache-2.0
"""Every topic and action name of the stack in one place (shared/DESIGN.md, docs/ARCHITECTURE.md).

Nodes, tools and tests import the names from here instead of spelling them out, so a rename is one
edit. Plain strings: importing this module needs no rclpy.
"""

from __future__ import annotations

# the task: one-line way in, the action, and what comes out
INSTRUCTION = "/vla/instruction"          # std_msgs/String -> policy (becomes a task like a goal)
MANIPULATE = "/vla/manipulate"            # vla_interfaces/action/Manipulate (policy node's server)
STATUS = "/vla/status"                    # std_msgs/String, one JSON event (vla_common.status)
TASK_STATUS = "/vla/task_status"          # vla_interfaces/msg/TaskStatus, latched: final status per task

# perception -> policy -> executor
FEATURE_CLOUD = "/vla/feature_cloud"      # sensor_msgs/PointCloud2 (x y z rgb f0..)
PERCEPTION_REQUEST = "/vla/perception/request"  # std_msgs/Empty: fuse a cloud now
GRASP_POSE = "/vla/grasp_pose"            # geometry_msgs/PoseStamped
PLACE_POSE = "/vla/place_pose"            # geometry_msgs/PoseStamped
GRASP_CANDIDATES = "/vla/grasp_candidates"  # geometry_msgs/PoseArray (RViz)

# safety
ESTOP = "/vla/estop"                      # std_msgs/Bool: true = halt now and refuse motion until false
MOTION_CANCEL = "/vla/motion/cancel"      # std_msgs/Empty: stop the running motion (hold), stay ready

# robot / simulator side
JOINT_STATES = "/joint_states"            # sensor_msgs/JointState
ARM_TRAJECTORY = "/arm_controller/joint_trajectory"  # trajectory_msgs/JointTrajectory (empty = stop)
GRIPPER_COMMAND = "/gripper_controller/command"      # std_msgs/Float64 (1.0 open, 0.0 closed)
CLOCK = "/clock"                          # rosgraph_msgs/Clock (sim time)
RIG_CALIBRATION = "/cameras/rig_calibration"         # std_msgs/String (latched rig YAML)
SIM_LOAD_SCENE = "/sim/load_scene"        # std_msgs/String JSON
