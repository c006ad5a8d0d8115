# SPDX-License-Identifier: Apache-2.0
"""Real DDS between real processes: message contents across processes, loopback-only sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vc_procs import LineReader, stop, udp_sockets

from vla_common.ros_env import localhost_env

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros
HERE = Path(__file__).parent


def test_image_cloud_pose_between_processes(ros_localhost_env):
    """A 640x480 image, a 20k x 256-channel cloud and a pose cross to another process intact."""
    env = dict(ros_localhost_env)
    sub = subprocess.Popen([sys.executable, str(HERE / "vc_peers.py"), "sub", "--seed", "7",
                            "--timeout", "60"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pub = subprocess.Popen([sys.executable, str(HERE / "vc_peers.py"), "pub", "--seed", "7"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out, _ = sub.communicate(timeout=90)
    finally:
        stop(pub)
        if sub.poll() is None:
            sub.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == [] and result["ok"] == {"image": True, "cloud": True, "pose": True}, out
    assert sub.returncode == 0


def _talker_sockets(env: dict[str, str]) -> list[tuple[str, str, int]]:
    proc = subprocess.Popen([sys.executable, "-m", "vla_common.testing_nodes.talker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = LineReader(proc)
    try:
        assert out.wait_for("talker up", 30), out.text()
        time.sleep(1.0)  # let discovery open its sockets
        return udp_sockets(proc.pid)
    finally:
        stop(proc)


def test_udp_sockets_are_loopback_only(ros_localhost_env):
    """Every UDP socket of a node started with localhost_env() is bound to 127.0.0.1."""
    socks = _talker_sockets(dict(ros_localhost_env))
    assert socks, "the node holds no UDP socket at all: the check below would prove nothing"
    off_loopback = [s for s in socks if s[0] != "udp" or s[1] != "127.0.0.1"]
    assert off_loopback == [], f"sockets not on 127.0.0.1: {off_loopback} (all: {socks})"


@pytest.mark.parametrize("with_profile", [False, True], ids=["ros-default", "profile+LOCALHOST"])
def test_socket_check_detects_non_loopback_sockets(with_profile):
    """The same check fails for the ROS default transports, and for ROS_AUTOMATIC_DISCOVERY_RANGE=
    LOCALHOST even with the profile (rmw_fastrtps then adds its own UDP transport): the test above
    can fail, and this is why localhost_env() uses SYSTEM_DEFAULT with the profile."""
    env = localhost_env()
    if not with_profile:
        for key in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            env.pop(key)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    socks = _talker_sockets(env)
    assert any(ip != "127.0.0.1" for _, ip, _ in socks), socks
