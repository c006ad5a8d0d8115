# SPDX-License-Identifier: Apache-2.0
"""Real robot: perception, policy and executor (``ros2 launch launch/robot.launch.py robot:=ur5``).

Cameras and the arm controller come from the robot's own drivers (realsense2_camera or pyrealsense2,
the UR driver's ros2_control); DDS keeps the ROS defaults unless ``local:=true``. The node list comes
from vla_common.graph, the same description ``vla launch robot`` uses. The arguments below override
one parameter each when given (README, "First day on a robot"), e.g.

    ros2 launch vla_common robot.launch.py robot:=ur5 backend:=moveit speed_scale:=0.1 \\
        camera_source:=pyrealsense2 rig_calibration:=/etc/vla/rig_robot.yaml

``backend:=moveit`` plans with moveit_py on the MoveIt configuration generated from our URDF
(vla_executor/robots/moveit/<robot>/, controller ``scaled_joint_trajectory_controller`` on the UR5);
``backend:=builtin`` publishes JointTrajectory on ``trajectory_topic`` (on the UR driver:
``/scaled_joint_trajectory_controller/joint_trajectory``).
"""

from vla_common.ros_launch import ParamArgument

ARGUMENTS = (
    ParamArgument("backend", "executor", "backend", "builtin | moveit (moveit_py, generated MoveIt config)",
                  ("builtin", "moveit")),
    ParamArgument("speed_scale", "executor", "speed_scale",
                  "fraction of the joint velocity/acceleration limits (0.1 on the first day)"),
    ParamArgument("trajectory_topic", "executor", "trajectory_topic",
                  "JointTrajectory topic of the builtin backend (UR driver: "
                  "/scaled_joint_trajectory_controller/joint_trajectory)"),
    ParamArgument("camera_source", "perception", "camera_source",
                  "topics (realsense2_camera) | pyrealsense2 (devices by serial from the rig YAML)",
                  ("topics", "pyrealsense2")),
    ParamArgument("rig_calibration", "perception", "rig_calibration",
                  "rig YAML written by `vla calibrate rig` (absolute path)"),
)


def generate_launch_description():
    from vla_common.ros_launch import launch_description

    return launch_description("robot", local_default=False, arguments=ARGUMENTS)
