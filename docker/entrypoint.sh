#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Container entry point: ROS 2 Jazzy (MoveIt, UR driver, realsense2_camera, Gazebo come with it),
# the Python venv, then the colcon install of the VLA stack.
set -e
source /opt/ros/jazzy/setup.bash
source "${VLA_VENV:-/opt/vla/venv}/bin/activate"
source /opt/vla/ws/install/setup.bash
exec "$@"
