# SPDX-License-Identifier: Apache-2.0
"""Environment that keeps DDS traffic on this machine, for tests, demos and benchmarks.

The shipped Fast DDS profile (``dds/fastdds_localhost.xml``) restricts transports to shared
memory and UDP on 127.0.0.1 (allow-listed interface, explicit loopback locators, initial peer
127.0.0.1, no multicast), and a random ``ROS_DOMAIN_ID`` keeps parallel runs apart. Robot
launches do not use this (README).

Why ``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT`` and not ``LOCALHOST``: with ``LOCALHOST``,
rmw_fastrtps_cpp 8.4 (Jazzy, the pip wheels) adds a UDPv4 transport of its own next to the
profile's, and that transport binds sockets on 0.0.0.0 and on every interface address (measured
by reading /proc/<pid>/net/udp of a node). ``SYSTEM_DEFAULT`` makes rmw_fastrtps leave discovery
to the profile, which keeps discovery on this host by itself; the socket test in
tests/vla_common/test_ros_transport.py checks that every UDP socket of a node is on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

FASTDDS_PROFILE = Path(__file__).parent / "dds" / "fastdds_localhost.xml"


def random_domain_id() -> int:
    """A ROS domain id in 1..100 (the range that fits every participant-id layout)."""
    return random.SystemRandom().randint(1, 100)


def localhost_env(domain_id: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: os.environ) with DDS confined to loopback.

    Args:
        domain_id: ROS_DOMAIN_ID to use; a random one when None.
        base: environment to start from.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"  # discovery confined by the profile (above)
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated switch that would force LOCALHOST again
    env.pop("ROS_STATIC_PEERS", None)
    env["ROS_DOMAIN_ID"] = str(random_domain_id() if domain_id is None else domain_id)
    env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"  # the profile is Fast DDS configuration
    env["PYTHONUNBUFFERED"] = "1"
    return env


def apply_localhost_env(domain_id: int | None = None) -> dict[str, str]:
    """Apply :func:`localhost_env` to this process (call before ``rclpy.init``)."""
    env = localhost_env(domain_id)
    os.environ.update(env)
    return env
