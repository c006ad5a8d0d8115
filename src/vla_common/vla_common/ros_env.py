# SPDX-License-Identifier: Apache-2.0
"""Environment that keeps DDS traffic on this machine, for tests, demos and benchmarks.

``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` limits discovery to this host, the shipped Fast DDS
profile restricts transports to shared memory and UDP on 127.0.0.1, and a random
``ROS_DOMAIN_ID`` keeps parallel runs apart. Robot launches do not use this (README).
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
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(random_domain_id() if domain_id is None else domain_id)
    env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_PROFILE)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def apply_localhost_env(domain_id: int | None = None) -> dict[str, str]:
    """Apply :func:`localhost_env` to this process (call before ``rclpy.init``)."""
    env = localhost_env(domain_id)
    os.environ.update(env)
    return env
