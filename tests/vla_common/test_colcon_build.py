# SPDX-License-Identifier: Apache-2.0
"""``colcon build`` of the workspace (the ROS way of installing) succeeds and installs what runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLCON = Path(sys.executable).parent / "colcon"
PACKAGES = ["vla_common", "vla_perception", "vla_policy", "vla_executor", "vla_sim"]
VENV_PREFIX = Path(sys.executable).parent.parent  # where the ros-jazzy-* wheels put share/ and lib/


@pytest.mark.skipif(not COLCON.exists(), reason="colcon is not installed in this environment")
def test_colcon_build_workspace(tmp_path):
    build, install = tmp_path / "build", tmp_path / "install"
    # vla_interfaces (CMake, rosidl) finds the generators through the ament index of the venv prefix
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", str(VENV_PREFIX))
    r = subprocess.run([str(COLCON), "--log-base", str(tmp_path / "log"), "build", "--base-paths", "src",
                        "--build-base", str(build), "--install-base", str(install)],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"Summary: {len(PACKAGES) + 1} packages finished" in r.stdout, r.stdout[-2000:]
    iface = install / "vla_interfaces" / "share" / "vla_interfaces"
    assert (iface / "action" / "Manipulate.action").is_file()
    share = install / "vla_common" / "share" / "vla_common"
    assert (share / "launch" / "sim.launch.py").is_file() and (share / "launch" / "robot.launch.py").is_file()
    for pkg in PACKAGES:  # ament index markers, so ros2 run / FindPackageShare find them
        assert (install / pkg / "share" / "ament_index" / "resource_index" / "packages" / pkg).is_file()
    site = install / "vla_common" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages"
    assert (site / "vla_common" / "dds" / "fastdds_localhost.xml").is_file()
    vla = install / "vla_common" / "lib" / "vla_common" / "vla"  # where `ros2 run vla_common vla` looks
    assert vla.is_file()

    # The installed copy runs on its own: outside the checkout, with only the install on PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("VLA_CONFIG_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join(
        str(install / p / "lib" / site.parent.name / "site-packages") for p in PACKAGES)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(str(install / p) for p in PACKAGES)
    probe = ("import vla_common.graph as g, vla_common.launcher as la; "
             "print(g.__file__); print(g.config_dir()); print(la.node_command(g.graph('test')[0])[0])")
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    module_file, config, _ = r.stdout.splitlines()
    assert module_file.startswith(str(install)), "imported the checkout instead of the colcon install"
    assert Path(config) == share / "config"
    r = subprocess.run([sys.executable, str(vla), "--help"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "launch" in r.stdout, r.stderr
