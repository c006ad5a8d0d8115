# SPDX-License-Identifier: Apache-2.0
"""The one description of the node graph, read by ``launch/*.launch.py`` and by ``vla launch``.

A graph is a list of :class:`NodeSpec` (package, executable, node name, parameter files,
parameters, remappings). ``ros2 launch`` turns each into a ``launch_ros`` ``Node``; ``vla launch``
(vla_common.launcher), for machines without the ROS ``launch`` package, starts each as its own
process with the equivalent ``--ros-args``. Keeping a single list means the two can never drift.

Graphs (docs/ARCHITECTURE.md, "Node graph"):

* ``sim``: ``sim_bridge`` (PyBullet world publishing the robot's topics), ``perception``,
  ``policy``, ``executor``.
* ``robot``: the same minus ``sim_bridge``; cameras and arm are real.
* ``test``: a two-node talker/listener from :mod:`vla_common.testing_nodes`, used to test the
  launcher itself.

Parameter files are ROS 2 parameter YAML files found in :func:`config_dir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROBOTS = ("ur5", "humanoid_arm")
CONFIG_ENV = "VLA_CONFIG_DIR"


def _checkout_root() -> Path | None:
    """The repository checkout this module runs from (a parent holding config/ and src/vla_common), or None.

    Found by walking up from this file, not by a fixed number of levels, so it does not depend on
    where the package sits (source tree, editable install).
    """
    for parent in Path(__file__).resolve().parents:
        if (parent / "config").is_dir() and (parent / "src" / "vla_common").is_dir():
            return parent
    return None


def _installed_config() -> Path | None:
    """``<prefix>/share/vla_common/config`` of a colcon/ament install this module runs from, or None."""
    for parent in Path(__file__).resolve().parents:
        cand = parent / "share" / "vla_common" / "config"
        if cand.is_dir():
            return cand
    return None


@dataclass
class NodeSpec:
    """One node of a graph.

    Attributes:
        package: ROS package (= Python import package) that provides the node.
        executable: console script name (``ros2 run <package> <executable>``).
        name: node name (``__node`` remap), also the top-level key in its parameter files.
        params_files: parameter files, relative to :func:`config_dir` (or absolute), applied in order.
        parameters: parameter overrides applied after the files (``-p name:=value``).
        remappings: topic remappings ``(from, to)``.
        module: Python module with ``main()`` to run as ``python -m module`` when the console
            script is not installed (pip installs without the scripts on PATH, test nodes).
    """

    package: str
    executable: str
    name: str
    params_files: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    module: str | None = None

    def params_paths(self, config: Path | None = None) -> list[Path]:
        """Absolute paths of :attr:`params_files` (relative ones resolved in ``config``)."""
        if not self.params_files:
            return []
        base = config_dir() if config is None else Path(config)
        return [Path(p) if Path(p).is_absolute() else base / p for p in self.params_files]


def config_dir() -> Path:
    """The directory holding the YAML parameter files.

    Looked up in order: ``$VLA_CONFIG_DIR``; the ``config/`` folder of the repository checkout this
    module runs from (``pip install -e .``, or running from source); the copy that ``colcon build``
    installs to ``share/vla_common/config``.

    Raises:
        FileNotFoundError: none of these exists; the message lists what was tried.
    """
    tried = []
    env = os.environ.get(CONFIG_ENV)
    if env:
        if Path(env).is_dir():
            return Path(env)
        raise FileNotFoundError(f"${CONFIG_ENV}={env} is not a directory")
    root = _checkout_root()
    if root is not None:
        return root / "config"
    tried.append(f"a checkout above {Path(__file__).resolve().parent}")
    # colcon install: <prefix>/lib/pythonX.Y/site-packages/vla_common/graph.py -> <prefix>/share/...
    installed = _installed_config()
    if installed is not None:
        return installed
    tried.append(f"share/vla_common/config above {Path(__file__).resolve().parent}")
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("vla_common")) / "config"
        if share.is_dir():
            return share
        tried.append(str(share))
    except Exception:  # noqa: BLE001 (ament index absent or package not registered)
        tried.append("ament index (package vla_common not found)")
    raise FileNotFoundError(f"no config directory found (tried {tried}); set ${CONFIG_ENV}")


def _sim_graph(robot: str) -> list[NodeSpec]:
    core = _core_nodes(robot)
    for node in core:  # the sim bridge publishes /clock: everyone else runs on simulated time
        node.parameters["use_sim_time"] = True
    return [
        NodeSpec("vla_sim", "sim_bridge_node", "sim_bridge", ["sim_bridge.yaml"],
                 {"robot": robot}, module="vla_sim.bridge_node"),
        *core,
    ]


def _core_nodes(robot: str) -> list[NodeSpec]:
    return [
        NodeSpec("vla_perception", "perception_node", "perception", ["perception.yaml"],
                 module="vla_perception.perception_node"),
        NodeSpec("vla_policy", "policy_node", "policy", ["policy.yaml"], module="vla_policy.policy_node"),
        NodeSpec("vla_executor", "executor_node", "executor", ["executor.yaml", f"executor_{robot}.yaml"],
                 {"robot": robot}, module="vla_executor.executor_node"),
    ]


def _test_graph(robot: str) -> list[NodeSpec]:
    del robot
    return [
        NodeSpec("vla_common", "vla_test_talker", "talker", parameters={"rate_hz": 10.0},
                 module="vla_common.testing_nodes.talker"),
        NodeSpec("vla_common", "vla_test_listener", "listener", module="vla_common.testing_nodes.listener"),
    ]


GRAPHS = {"sim": _sim_graph, "robot": _core_nodes, "test": _test_graph}


def graph(name: str, robot: str = "ur5") -> list[NodeSpec]:
    """The nodes of graph ``name`` (``sim``, ``robot`` or ``test``) for ``robot``.

    Raises:
        ValueError: unknown graph or robot, listing the valid names.
    """
    if name not in GRAPHS:
        raise ValueError(f"unknown graph {name!r}; choose one of {sorted(GRAPHS)}")
    if robot not in ROBOTS:
        raise ValueError(f"unknown robot {robot!r}; choose one of {list(ROBOTS)}")
    return GRAPHS[name](robot)


def ros_args(node: NodeSpec, config: Path | None = None,
             extra_params_files: list[Path] | None = None) -> list[str]:
    """The ``--ros-args`` that give a node process its name, parameters and remappings.

    Parameter files come first, then ``extra_params_files`` (e.g. a robot's site overrides), then
    the explicit ``-p`` parameters, so later entries win as in ``ros2 launch``.
    """
    args = ["--ros-args", "-r", f"__node:={node.name}"]
    for path in [*node.params_paths(config), *(extra_params_files or [])]:
        args += ["--params-file", str(path)]
    for key, value in node.parameters.items():
        args += ["-p", f"{key}:={_param_literal(value)}"]
    for src, dst in node.remappings:
        args += ["-r", f"{src}:={dst}"]
    return args


def _param_literal(value: Any) -> str:
    """A parameter value as a YAML literal for ``-p name:=value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)
