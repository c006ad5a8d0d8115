# SPDX-License-Identifier: Apache-2.0
"""``vla launch``: real node processes started from the graph description, logs, shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from vc_procs import LineReader

from vla_common import graph as g
from vla_common.launcher import Launcher, node_command

pytest.importorskip("rclpy")


def _start_launcher(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, LineReader]:
    proc = subprocess.Popen([sys.executable, "-m", "vla_common.launcher", "test", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, LineReader(proc)


def _pids(out: LineReader) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for line in out.lines
            if (m := re.search(r"started '(\w+)' \(pid (\d+)\)", line))}


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.ros
def test_launch_test_graph_and_kill_one_node(ros_localhost_env):
    """Both nodes start and talk; killing one stops the other and the launcher exits 1 naming it."""
    proc, out = _start_launcher(dict(ros_localhost_env))
    try:
        assert out.wait_for(r"^\[listener\s*\] .*heard: hello \d+", 60), out.text()
        pids = _pids(out)
        assert set(pids) == {"talker", "listener"}, out.text()
        os.kill(pids["talker"], signal.SIGKILL)
        assert proc.wait(timeout=30) == 1, out.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    out.wait_for("FAILED", 5)
    text = out.text()
    assert "node 'talker' exited with signal SIGKILL" in text, text
    assert "FAILED: node 'talker' died (signal SIGKILL)" in text, text
    assert "listener: code 0" in text, text  # the survivor got SIGINT and shut down cleanly
    assert _gone(pids["talker"]) and _gone(pids["listener"])


@pytest.mark.ros
def test_launch_ctrl_c_stops_all_cleanly(ros_localhost_env):
    proc, out = _start_launcher(dict(ros_localhost_env))
    try:
        assert out.wait_for(r"heard: hello", 60), out.text()
        pids = _pids(out)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, out.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    out.wait_for("all nodes stopped", 5)
    assert "all nodes stopped (talker: code 0, listener: code 0)" in out.text(), out.text()
    assert all(_gone(p) for p in pids.values())


def test_commands_from_graph(tmp_path):
    (tmp_path / "a.yaml").write_text("n1:\n  ros__parameters: {x: 1}\n")
    node = g.NodeSpec("vla_common", "no_such_script", "n1", ["a.yaml"],
                      {"rate": 2.5, "on": True, "s": "it's"}, [("/in", "/cameras/top/color/image_raw")],
                      module="vla_common.testing_nodes.talker")
    cmd = Launcher([node], config=tmp_path).commands()["n1"]
    assert cmd[:3] == [sys.executable, "-m", "vla_common.testing_nodes.talker"]
    assert cmd[3:] == ["--ros-args", "-r", "__node:=n1", "--params-file", str(tmp_path / "a.yaml"),
                       "-p", "rate:=2.5", "-p", "on:=true", "-p", "s:='it''s'",
                       "-r", "/in:=/cameras/top/color/image_raw"]


def test_missing_params_files_are_all_reported(tmp_path):
    nodes = [g.NodeSpec("p", "x", "a", ["a.yaml"], module="m"),
             g.NodeSpec("p", "x", "b", ["b.yaml"], module="m")]
    pattern = r"(?s)'a'.*a.yaml does not exist.*'b'.*b.yaml does not exist"
    with pytest.raises(FileNotFoundError, match=pattern):
        Launcher(nodes, config=tmp_path).commands()


def test_missing_executable_and_module():
    with pytest.raises(FileNotFoundError, match="executable 'nope_node' of package 'p' is not installed"):
        node_command(g.NodeSpec("p", "nope_node", "n"))


def test_duplicate_node_names_rejected():
    with pytest.raises(ValueError, match="unique"):
        Launcher([g.NodeSpec("p", "x", "a", module="m"), g.NodeSpec("p", "x", "a", module="m")])


def test_launcher_cli_errors(ros_localhost_env):
    r = subprocess.run([sys.executable, "-m", "vla_common.launcher", "test", "--only", "talker,ghost"],
                       env=ros_localhost_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown nodes ['ghost']" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vla_common.launcher", "test", "--dry-run"],
                       env=ros_localhost_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "talker: " in r.stdout and "__node:=listener" in r.stdout
