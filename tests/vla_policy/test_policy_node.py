# SPDX-License-Identifier: Apache-2.0
"""The policy node as a real process: refuses empty and over-length instructions with a status."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from policy_proc import policy_node_and_client  # noqa: E402
from std_msgs.msg import String  # noqa: E402


def _spin_until(node, executor, pred, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
        if pred():
            return True
    return False


@pytest.mark.ros
def test_policy_node_refuses_bad_instructions():
    with policy_node_and_client("max_instruction_chars:=50") as (proc, node, ex, events, pub):

        def refused(pred):
            return [e for e in events if e["event"] == "instruction_refused" and pred(e)]

        # discovery and the checkpoint load take a moment: resend until the node answers
        ok = False
        for _ in range(120):
            pub.publish(String(data="   "))
            if _spin_until(node, ex, lambda: refused(lambda e: "empty" in e["detail"]), 0.5):
                ok = True
                break
            assert proc.poll() is None, proc.output()
        assert ok, "no instruction_refused for an empty instruction"
        e = refused(lambda e: "empty" in e["detail"])[0]
        assert e["node"] == "policy" and e["level"] == "warn"

        pub.publish(String(data="grasp the " + "very " * 20 + "red cube"))
        assert _spin_until(node, ex, lambda: refused(lambda e: "limit of 50" in e["detail"]), 10.0)
        # a refused instruction starts no task: no task_* event and no instruction_received
        _spin_until(node, ex, lambda: False, 0.5)
        started = ("task_succeeded", "task_failed", "instruction_received")
        assert not [e for e in events if e["event"] in started]


@pytest.mark.ros
def test_policy_node_refuses_what_it_cannot_ground():
    """An unknown object or another language ends in instruction_not_understood naming why; no task.
    Then 200 instructions in a burst: each is answered."""
    with policy_node_and_client() as (proc, node, ex, events, pub):

        def answered(text):
            return [e for e in events if e.get("instruction") == text]

        for text, word in (("pick up the purple elephant", "elephant"), ("nimm den roten Becher", "becher")):
            for _ in range(60):  # until discovery (the node loads its models at start-up)
                pub.publish(String(data=text))
                if _spin_until(node, ex, lambda t=text: answered(t), 1.0):
                    break
                assert proc.poll() is None, proc.output()
            got = answered(text)
            assert got and got[0]["event"] == "instruction_not_understood", got
            assert word in got[0]["detail"]
        _spin_until(node, ex, lambda: False, 0.5)
        started = ("task_succeeded", "task_failed", "instruction_received", "grasp_selected")
        assert not [e for e in events if e["event"] in started]

        # a burst of 200 instructions: every one is answered (one starts, the rest are busy)
        burst = [f"pick up the red mug {i}" for i in range(200)]
        for text in burst:
            pub.publish(String(data=text))
        want = set(burst)
        _spin_until(node, ex, lambda: want <= {e.get("instruction") for e in events}, 60.0)
        answers = {e.get("instruction"): e["event"] for e in events if e.get("instruction") in want}
        assert len(answers) == 200, f"{200 - len(answers)} of 200 instructions were never answered"
        assert sorted(answers.values()).count("instruction_received") == 1


@pytest.mark.ros
def test_policy_node_refuses_to_start_on_a_bad_checkpoint(tmp_path):
    """A missing or corrupt checkpoint is an error at start-up (one clear line, exit 2), not at the
    first instruction."""
    bad = tmp_path / "ckpt"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    for ckpt in ("/nonexistent", str(bad)):
        r = subprocess.run([sys.executable, "-m", "vla_policy.policy_node", "--ros-args", "-p",
                            f"checkpoint:={ckpt}"], env=dict(os.environ), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "cannot start" in r.stderr and ckpt in r.stderr, r.stderr
