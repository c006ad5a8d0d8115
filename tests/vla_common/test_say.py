# SPDX-License-Identifier: Apache-2.0
"""``vla say``: one instruction to a running graph, following its status events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from vc_procs import LineReader, stop

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros
HERE = Path(__file__).parent


def _vla(env, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "vla_common.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_say_and_wait_for_result(ros_localhost_env):
    env = dict(ros_localhost_env)
    responder = subprocess.Popen([sys.executable, str(HERE / "vc_responder.py")], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = LineReader(responder)
    try:
        assert out.wait_for("responder up", 30), out.text()
        ok = _vla(env, "say", "put the strawberry near the apple", "--wait", "--timeout", "30")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "sent on /vla/instruction: 'put the strawberry near the apple'" in ok.stdout
        assert "instruction_received" in ok.stdout and "task_succeeded" in ok.stdout
        failed = _vla(env, "say", "please fail", "--wait", "--timeout", "30")
        assert failed.returncode == 1 and "task_failed" in failed.stdout, failed.stdout + failed.stderr
    finally:
        stop(responder)


def test_say_without_a_graph_fails_clearly(ros_localhost_env):
    r = _vla(dict(ros_localhost_env), "say", "hello", "--match-timeout", "1")
    assert r.returncode == 1
    assert "nothing subscribes to /vla/instruction" in r.stderr and "ROS_DOMAIN_ID" in r.stderr


def test_say_rejects_empty_instruction(ros_localhost_env):
    r = _vla(dict(ros_localhost_env), "say", "  ")
    assert r.returncode == 2 and "empty" in r.stderr


def test_say_action_prints_feedback_and_result_and_cancels_on_timeout(ros_localhost_env):
    pytest.importorskip("vla_interfaces.action")
    env = dict(ros_localhost_env)
    server = subprocess.Popen([sys.executable, str(HERE / "vc_action_server.py")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = LineReader(server)
    try:
        assert out.wait_for("action server up", 30), out.text()
        ok = _vla(env, "say", "--action", "pick up the red mug")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "feedback: stage 1/1 grasp ('pick up the red mug'), attempt 1: perceiving" in ok.stdout
        assert "result: succeeded" in ok.stdout
        failed = _vla(env, "say", "--action", "please fail")
        assert failed.returncode == 1 and "result: failed: told to fail" in failed.stdout
        timed_out = _vla(env, "say", "--action", "wait forever", "--timeout", "2")
        assert timed_out.returncode == 3 and "cancelling the goal" in timed_out.stderr
    finally:
        stop(server)
