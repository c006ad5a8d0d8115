# SPDX-License-Identifier: Apache-2.0
"""Test-run settings shared by every package's tests.

One random ROS_DOMAIN_ID plus the loopback-only DDS environment (vla_common.ros_env) is applied to
this pytest process for the whole run, so every node process a test starts inherits it: DDS
traffic stays on this machine and parallel test runs never cross.
"""

from __future__ import annotations

import os

import pytest

from vla_common.ros_env import localhost_env

# Applied at import (before any test module can call rclpy.init), not only in a fixture.
_ENV = localhost_env(domain_id=int(os.environ["VLA_TEST_DOMAIN_ID"]) if "VLA_TEST_DOMAIN_ID" in os.environ
                     else None)
os.environ.update(_ENV)


@pytest.fixture(scope="session", autouse=True)
def ros_localhost_env() -> dict[str, str]:
    """The environment every test (and every process it starts) runs in: loopback DDS, random domain."""
    os.environ.update(_ENV)
    return dict(_ENV)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts with one torch thread and leaves the count as it found it.

    ``PerceptionPipeline`` sets the process-wide count (cores - 1 by default), which otherwise leaks
    into later tests: a test's floating-point reductions, and so its near-tie decisions, would
    depend on the machine's core count and on which tests ran before it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
