# SPDX-License-Identifier: Apache-2.0
"""Static checks of docker/ (no Docker engine here): copied paths, apt list vs ROS 2 Jazzy and the
code's imports, the torch build argument, compose services and the entry point."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

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
    svc = compose["services"]["robot"]
    assert svc["network_mode"] == "host" and svc["build"]["dockerfile"] == "docker/Dockerfile"
    assert svc["command"][:4] == ["ros2", "launch", "vla_common", "robot.launch.py"]
    assert "/dev/bus/usb:/dev/bus/usb" in svc["devices"]  # RealSense cameras
    assert (REPO / "launch" / "robot.launch.py").is_file()
    for name in set(compose["services"]) - {"robot"}:  # every service launches a launch file that ships
        cmd = compose["services"][name]["command"]
        assert cmd[:3] == ["ros2", "launch", "vla_common"] and (REPO / "launch" / cmd[3]).is_file(), cmd
    assert {s["build"]["args"]["TORCH"] for s in compose["services"].values()} == {"${TORCH:-cpu}"}


JAZZY_INDEX = Path(__file__).parent / "data" / "rosdistro_jazzy_packages.txt"
OWN_PACKAGES = {p.parent.name for p in (REPO / "src").glob("*/package.xml")}  # colcon builds these


def apt_packages() -> dict[str, list[str]]:
    """docker/apt-packages.txt as {apt package: [python modules it provides]}."""
    out: dict[str, list[str]] = {}
    for line in (DOCKER / "apt-packages.txt").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            assert fields[0] not in out, f"{fields[0]} listed twice"
            out[fields[0]] = fields[1:]
    return out


def test_dockerfile_installs_the_one_apt_list():
    text = (DOCKER / "Dockerfile").read_text()
    assert "COPY docker/apt-packages.txt" in text and "xargs apt-get install" in text
    # no package named in the Dockerfile itself: the list lives in one place
    assert not re.search(r"apt-get install[^\n]*\b(ros-jazzy-|python3-|lib)", text)
    assert "!docker/apt-packages.txt" in (DOCKER / "Dockerfile.dockerignore").read_text()


def test_ros_apt_packages_are_released_in_jazzy():
    released = {ln for ln in JAZZY_INDEX.read_text().splitlines() if ln and not ln.startswith("#")}
    assert len(released) > 2000  # the whole snapshot, not a hand-picked subset
    ros = [p for p in apt_packages() if p.startswith("ros-")]
    unknown = [p for p in ros if p not in released]
    assert not unknown, f"not ROS 2 Jazzy packages (rosdistro snapshot): {unknown}"
    for needed in ("ros-jazzy-moveit-py", "ros-jazzy-ur-robot-driver", "ros-jazzy-realsense2-camera",
                   "ros-jazzy-ros-gz", "ros-jazzy-gz-ros2-control", "ros-jazzy-moveit-planners-ompl"):
        assert needed in ros, f"the image must install {needed}"


def _apt_cache_knows(name: str) -> bool:
    return subprocess.run(["apt-cache", "show", name], capture_output=True).returncode == 0


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="no apt-cache on this machine")
def test_system_apt_packages_exist():
    """Ubuntu names, checked against this machine's apt index (Debian shares these names)."""
    if not _apt_cache_knows("python3-venv"):
        pytest.skip("apt package lists are empty here (run apt-get update)")
    system = [p for p in apt_packages() if not p.startswith("ros-")]
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *system], capture_output=True, text=True)
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    assert system and not set(system) - known, f"unknown apt packages: {set(system) - known}"


def _imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in src/ and launch/ -> files importing them."""
    mods: dict[str, set[str]] = {}
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN_PACKAGES:
                    mods.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return mods


def _pip_closure() -> set[str]:
    """Normalised names of requirements.txt minus ros-jazzy-* (what the image's pip installs) and of
    everything they require, as installed here."""
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    todo = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("ros-jazzy-"):
            todo.append(Requirement(line).name)
    seen: set[str] = set()
    while todo:
        name = norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def test_every_imported_module_is_installed_by_the_image():
    """A module the code imports comes from the apt list or from the image's pip step."""
    from_apt = {m for mods in apt_packages().values() for m in mods}
    pip = _pip_closure()
    dists = importlib.metadata.packages_distributions()
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    missing = {}
    for mod, files in sorted(_imported_modules().items()):
        # a compiled top-level module (ruckig.*.so) has no entry in packages_distributions: its dist
        # then carries the module's name
        if mod in from_apt or any(norm(d) in pip for d in dists.get(mod, [norm(mod)])):
            continue
        missing[mod] = sorted(files)[:3]
    assert not missing, f"installed by neither docker/apt-packages.txt nor requirements.txt: {missing}"
    # and the apt list names no module the code does not import (a stale list)
    unused = from_apt - set(_imported_modules())
    assert not unused, f"docker/apt-packages.txt names modules nothing imports: {unused}"


def test_torch_build_argument_selects_cpu_or_cuda():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG TORCH=cpu$", text, re.M)
    case = text[text.index('case "${TORCH}" in'):text.index("esac")]
    assert "cpu)" in case and "cuda)" in case and "--index-url" in case and "exit 1" in case


def test_entrypoint_sources_ros_venv_then_workspace():
    path = DOCKER / "entrypoint.sh"
    entry = path.read_text()
    steps = ("/opt/ros/jazzy/setup.bash", "/bin/activate", "/opt/vla/ws/install/setup.bash", 'exec "$@"')
    order = [entry.index(s) for s in steps]
    assert order == sorted(order)
    assert "set -e" in entry
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_package_xml_dependencies_are_installed_by_the_image():
    """What rosdep would install for src/*/package.xml: every ROS dependency is in the apt list."""
    import xml.etree.ElementTree as ET

    apt = set(apt_packages())
    missing = {}
    for xml in sorted((REPO / "src").glob("*/package.xml")):
        root = ET.parse(xml).getroot()
        for tag in ("depend", "build_depend", "buildtool_depend", "exec_depend"):
            for el in root.iter(tag):
                name = el.text.strip()
                if name in OWN_PACKAGES or name.startswith("python3-"):  # python3-*: the pip step
                    continue
                if "ros-jazzy-" + name.replace("_", "-") not in apt:
                    missing.setdefault(xml.parent.name, []).append(name)
    assert len(OWN_PACKAGES) >= 5 and not missing, f"not in apt-packages.txt: {missing}"
