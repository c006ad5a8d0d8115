# SPDX-License-Identifier: Apache-2.0
"""The node-graph description, config directory lookup and the ``vla`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vla_common import graph as g
from vla_common.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


def test_sim_and_robot_graphs_follow_the_architecture():
    sim = {n.name: n for n in g.graph("sim")}
    assert list(sim) == ["sim_bridge", "perception", "policy", "executor"]
    assert sim["sim_bridge"].module == "vla_sim.bridge_node"
    assert sim["executor"].params_files == ["executor.yaml", "executor_ur5.yaml"]
    robot = g.graph("robot", robot="humanoid_arm")
    assert [n.name for n in robot] == ["perception", "policy", "executor"]
    assert robot[-1].params_files[-1] == "executor_humanoid_arm.yaml"
    for node in sim.values():  # every node's executable is a console script of its package
        setup = (REPO / "src" / node.package / "setup.py").read_text()
        assert f"{node.executable} = {node.module}:main" in setup.replace("'", "").replace('"', "")


def test_unknown_graph_or_robot():
    with pytest.raises(ValueError, match="unknown graph 'sime'.*robot.*sim"):
        g.graph("sime")
    with pytest.raises(ValueError, match="unknown robot 'ur10'"):
        g.graph("sim", robot="ur10")


def test_config_dir_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv(g.CONFIG_ENV, raising=False)
    assert g.config_dir() == REPO / "config"  # running from the checkout
    monkeypatch.setenv(g.CONFIG_ENV, str(tmp_path))
    assert g.config_dir() == tmp_path
    monkeypatch.setenv(g.CONFIG_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="VLA_CONFIG_DIR"):
        g.config_dir()


def test_cli_help_and_errors(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "launch", "say", "collect", "train", "eval", "bench", "train-clip"):
        assert f"  {cmd} " in out
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
    assert set(COMMANDS) == {"demo", "launch", "say", "collect", "train", "eval", "bench", "train-clip",
                             "grasp-prior", "calibrate", "faults"}


def test_vla_console_script_installed():
    exe = shutil.which("vla") or str(Path(sys.executable).parent / "vla")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "launch" in r.stdout and "say" in r.stdout
