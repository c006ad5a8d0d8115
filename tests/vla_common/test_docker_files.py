# SPDX-License-Identifier: Apache-2.0
"""Static checks of docker/ (no Docker engine here): the files it copies exist, compose parses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"


def test_dockerfile_copies_existing_paths():
    text = (DOCKER / "Dockerfile").read_text()
    assert text.splitlines()[0].startswith("# SPDX-License-Identifier")
    assert re.search(r"^FROM ros:jazzy$", text, re.M)
    sources = re.findall(r"^COPY (\S+) ", text, re.M)
    assert sources, "no COPY lines"
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert "grep -v '^ros-jazzy-'" in text  # ROS comes from apt, not from the PyPI wheels


def test_compose_runs_robot_graph_on_host_network():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    svc = compose["services"]["vla"]
    assert svc["network_mode"] == "host" and svc["build"]["dockerfile"] == "docker/Dockerfile"
    assert svc["command"][:4] == ["ros2", "launch", "vla_common", "robot.launch.py"]
    assert (REPO / "launch" / "robot.launch.py").is_file()
    entry = (DOCKER / "entrypoint.sh").read_text()
    assert "/opt/ros/jazzy/setup.bash" in entry and "/opt/vla/ws/install/setup.bash" in entry
