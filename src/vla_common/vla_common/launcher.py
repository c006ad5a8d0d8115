# SPDX-License-Identifier: Apache-2.0
"""``vla launch <graph>``: run a node graph as separate processes where ROS ``launch`` is absent.

The pip-installed ROS 2 wheels have no ``launch``/``launch_ros``, so this is the project's
stand-in for ``ros2 launch launch/sim.launch.py``, built from the same :mod:`vla_common.graph`
description. Each node runs in its own OS process (its console script when installed, else
``python -m <module>``) with ``--ros-args -r __node:=<name> --params-file ... -p k:=v -r a:=b``.
Every line a node prints is forwarded prefixed with ``[name]``. A node that exits is restarted
up to ``--respawn`` times (as ``ros2 launch``'s ``respawn``/``respawn_max_retries``; default 3 for
the sim and robot graphs, 0 for the test graph) while the others keep running; each exit is
announced on ``/vla/status`` as a ``node_exited`` event from node ``launch`` (fields ``name``,
``exit``, ``respawn``), and when the policy node dies with a task in flight the launcher ends that
task with ``task_failed`` on its behalf, so no task is left without a final status. When the user
presses Ctrl-C, or when a node exits with no restarts left, all nodes get SIGINT, then SIGTERM,
then SIGKILL after timeouts; a node that died makes the launcher exit non-zero, naming it and its
exit code.

The sim and test graphs run with the loopback-only DDS environment
(:func:`vla_common.ros_env.localhost_env`); the robot graph keeps the ROS defaults unless
``--local`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from vla_common.graph import GRAPHS, ROBOTS, NodeSpec, config_dir, graph, ros_args
from vla_common.ros_env import localhost_env

LAUNCHER = "launch"


def describe_exit(code: int) -> str:
    """Exit status as text: ``code 3`` or ``signal SIGKILL`` (Popen gives -N for signal N)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def node_command(node: NodeSpec) -> list[str]:
    """The command that starts ``node``: its console script if installed, else ``python -m module``.

    Console scripts are looked for next to this Python (a venv's ``bin/``), in each
    ``$AMENT_PREFIX_PATH`` prefix's ``lib/<package>/`` (colcon installs), then on ``$PATH``.

    Raises:
        FileNotFoundError: neither a console script nor a module is available.
    """
    candidates = [Path(sys.executable).parent / node.executable]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "lib" / node.package / node.executable)
    on_path = shutil.which(node.executable)
    if on_path:
        candidates.append(Path(on_path))
    for exe in candidates:
        if exe.is_file() and os.access(exe, os.X_OK):
            return [str(exe)]
    if node.module:
        return [sys.executable, "-m", node.module]
    raise FileNotFoundError(f"node '{node.name}': executable '{node.executable}' of package '{node.package}' "
                            f"is not installed (pip install -e . or colcon build) and no module is given")


def _set_parent_death_signal() -> None:  # pragma: no cover (runs in the child)
    """Ask Linux to SIGTERM the child if the launcher dies without cleaning up (prctl)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Launcher:
    """Starts, supervises and stops the processes of one node graph.

    Usable from Python (``with Launcher(nodes) as la: ...``; the demo does this) and from the
    command line (:func:`main`).

    Args:
        nodes: the graph.
        env: environment for every node process (default: this process's).
        extra_params_files: parameter files applied to every node after its own.
        config: directory the nodes' relative parameter files are in (default :func:`config_dir`).
        out: where forwarded log lines go.
        respawn: how many times :meth:`supervise` restarts each node that exits (0 = never).
        respawn_delay_s: wait this long after an exit before restarting the node.
        announce: publish ``node_exited`` (and ``task_failed`` for a task the dead policy owned)
            on ``/vla/status`` from a small rclpy node in this process (:class:`StatusAnnouncer`).
    """

    def __init__(self, nodes: Sequence[NodeSpec], env: dict[str, str] | None = None,
                 extra_params_files: Sequence[Path] | None = None, config: Path | None = None,
                 out: TextIO | None = None, respawn: int = 0, respawn_delay_s: float = 1.0,
                 announce: bool = False) -> None:
        if respawn < 0:
            raise ValueError(f"respawn must be >= 0, got {respawn}")
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique, got {names}")
        self.nodes = list(nodes)
        self.env = dict(os.environ if env is None else env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        self.extra_params_files = [Path(p) for p in extra_params_files or []]
        self._config = config
        self.out = out or sys.stdout
        self.procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._width = max((len(n) for n in names), default=0)
        self.line_callbacks: list[Callable[[str, str], None]] = []
        self.respawn = int(respawn)
        self.respawn_delay_s = float(respawn_delay_s)
        self.respawns: Counter[str] = Counter()
        # called as cb(name, exit code, will_respawn) when a node process exits
        self.exit_callbacks: list[Callable[[str, int, bool], None]] = []
        self._cmds: dict[str, list[str]] = {}
        self._pending: dict[str, float] = {}  # name -> monotonic time to restart it
        self._announce = announce
        self.enclave_root = ""  # e.g. "/vla": node <name> gets --enclave /vla/<name> (SROS2)
        self.announcer: StatusAnnouncer | None = None

    # ---------------------------------------------------------------- commands
    def commands(self) -> dict[str, list[str]]:
        """The full command line of every node, checking that parameter files exist.

        Raises:
            FileNotFoundError: a parameter file or an executable is missing (all listed at once).
        """
        config = self._config
        problems, cmds = [], {}
        for node in self.nodes:
            if node.params_files and config is None:
                config = config_dir()
            for path in [*node.params_paths(config), *self.extra_params_files]:
                if not path.is_file():
                    problems.append(f"node '{node.name}': parameter file {path} does not exist")
            try:
                cmds[node.name] = node_command(node) + ros_args(node, config, self.extra_params_files)
                if self.enclave_root:  # SROS2: each node runs as its own enclave of the keystore
                    cmds[node.name] += ["--enclave", f"{self.enclave_root.rstrip('/')}/{node.name}"]
            except FileNotFoundError as exc:
                problems.append(str(exc))
        if problems:
            raise FileNotFoundError("cannot launch:\n  " + "\n  ".join(problems))
        return cmds

    # ---------------------------------------------------------------- lifecycle
    def emit(self, name: str, line: str) -> None:
        """Write one prefixed line to :attr:`out` and pass it to the line callbacks."""
        with self._lock:
            self.out.write(f"[{name.ljust(self._width)}] {line}\n")
            self.out.flush()
        for cb in self.line_callbacks:
            cb(name, line)

    def _forward(self, name: str, stream: TextIO) -> None:
        for raw in iter(stream.readline, ""):
            self.emit(name, raw.rstrip("\n"))
        stream.close()

    def _popen(self, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace",
            start_new_session=True, preexec_fn=_set_parent_death_signal)

    def _follow(self, name: str) -> None:
        t = threading.Thread(target=self._forward, args=(name, self.procs[name].stdout), daemon=True,
                             name=f"forward-{name}")
        t.start()
        self._threads.append(t)

    def start(self) -> None:
        """Start every node process (all of them first, then the log-forwarding threads)."""
        cmds = self.commands()
        self._cmds = cmds
        if self._announce and self.announcer is None:
            enclave = f"{self.enclave_root.rstrip('/')}/{LAUNCHER}" if self.enclave_root else ""
            self.announcer = StatusAnnouncer.create(self.env, self.emit, enclave)
            if self.announcer is not None:
                self.exit_callbacks.append(self.announcer.node_exited)
        try:
            for name, cmd in cmds.items():
                self.procs[name] = self._popen(cmd)
        except OSError:
            self.stop()
            raise
        for name, proc in self.procs.items():
            self.emit(LAUNCHER, f"started '{name}' (pid {proc.pid}): {' '.join(cmds[name])}")
            self._follow(name)

    def supervise(self) -> tuple[str, int] | None:
        """Restart exited nodes that have respawns left; the first one that has none, else None.

        Call it periodically (:meth:`run` does). An exit is reported once to :attr:`exit_callbacks`;
        the restart happens :attr:`respawn_delay_s` later, the other nodes untouched.
        """
        now = time.monotonic()
        for name, proc in self.procs.items():
            if name in self._pending:
                if now >= self._pending[name]:
                    del self._pending[name]
                    self.respawns[name] += 1
                    self.procs[name] = self._popen(self._cmds[name])
                    self.emit(LAUNCHER, f"respawned '{name}' (pid {self.procs[name].pid}, restart "
                                        f"{self.respawns[name]}/{self.respawn})")
                    self._follow(name)
                continue
            code = proc.poll()
            if code is None:
                continue
            again = self.respawns[name] < self.respawn
            for cb in self.exit_callbacks:
                try:
                    cb(name, code, again)
                except Exception as exc:  # noqa: BLE001 - a callback must not stop supervision
                    self.emit(LAUNCHER, f"exit callback failed: {exc}")
            if not again:
                return name, code
            self.emit(LAUNCHER, f"node '{name}' exited with {describe_exit(code)}: restarting it in "
                                f"{self.respawn_delay_s:.1f} s ({self.respawns[name] + 1}/{self.respawn})")
            self._pending[name] = now + self.respawn_delay_s
        return None

    def poll(self) -> tuple[str, int] | None:
        """The first node process that has exited, as ``(name, exit code)``, else None."""
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, sigint_timeout_s: float = 5.0, sigterm_timeout_s: float = 3.0) -> dict[str, int]:
        """Stop every node: SIGINT, then SIGTERM, then SIGKILL after the timeouts.

        Returns:
            Exit code of every node process (negative = killed by that signal).
        """
        for sig, timeout in ((signal.SIGINT, sigint_timeout_s), (signal.SIGTERM, sigterm_timeout_s),
                             (signal.SIGKILL, 5.0)):
            alive = [n for n, p in self.procs.items() if p.poll() is None]
            if not alive:
                break
            if sig != signal.SIGINT:
                self.emit(LAUNCHER, f"{', '.join(alive)} still running: sending {sig.name}")
            for name in alive:
                try:
                    self.procs[name].send_signal(sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            for name in alive:
                try:
                    self.procs[name].wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        self._pending.clear()
        for t in self._threads:
            t.join(timeout=2.0)
        if self.announcer is not None:
            self.announcer.close()
            self.announcer = None
        return {name: p.returncode for name, p in self.procs.items()}

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, poll_s: float = 0.1) -> int:
        """Supervise until Ctrl-C/SIGTERM (exit 0) or until a node exits (exit 1, naming it).

        A second Ctrl-C skips the polite shutdown and kills the nodes.
        """
        stop = threading.Event()
        interrupts = [0]

        def on_signal(signum: int, frame: object) -> None:
            interrupts[0] += 1
            stop.set()
            if interrupts[0] > 1:
                for p in self.procs.values():
                    if p.poll() is None:
                        p.kill()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            died = None
            while not stop.wait(poll_s):
                died = self.supervise()
                if died is not None:
                    break
            if died is not None:
                name, code = died
                self.emit(LAUNCHER, f"node '{name}' exited with {describe_exit(code)}: stopping the graph")
            else:
                self.emit(LAUNCHER, "shutdown requested: stopping the graph")
            codes = self.stop()
            summary = ", ".join(f"{n}: {describe_exit(c)}" for n, c in codes.items())
            self.emit(LAUNCHER, f"all nodes stopped ({summary})")
            if died is not None:
                self.emit(LAUNCHER, f"FAILED: node '{died[0]}' died ({describe_exit(died[1])})")
                return 1
            return 0
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class StatusAnnouncer:
    """The launcher's voice on ``/vla/status``: node exits, and the end of a task a dead policy owned.

    A small rclpy node (``vla_launch``) in its own context and spin thread. It follows the status
    stream to know whether a task is in flight (``instruction_received`` without a later
    ``task_succeeded`` / ``task_failed``); when the ``policy`` process exits then, nobody else
    can end that task, so the announcer publishes its ``task_failed``.
    """

    OWNER = "policy"

    def __init__(self, env: dict[str, str], emit: Callable[[str, str], None], enclave: str = "") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        from vla_common.qos import EVENT_QOS

        self._String = String
        self._emit = emit
        self.ctx = rclpy.Context()
        domain = env.get("ROS_DOMAIN_ID", "")
        rclpy.init(context=self.ctx, domain_id=int(domain) if domain.isdigit() else None,
                   args=["--ros-args", "--enclave", enclave] if enclave else None)
        self.node = rclpy.create_node("vla_launch", context=self.ctx)
        self.pub = self.node.create_publisher(String, "/vla/status", EVENT_QOS)
        self.open_task: str | None = None
        self._lock = threading.Lock()
        self.node.create_subscription(String, "/vla/status", self._on_status, EVENT_QOS)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True, name="launch-announcer")
        self._thread.start()

    @classmethod
    def create(cls, env: dict[str, str], emit: Callable[[str, str], None], enclave: str = ""
               ) -> StatusAnnouncer | None:
        """An announcer, or None (with a log line) where rclpy is not importable or cannot start."""
        try:
            return cls(env, emit, enclave)
        except Exception as exc:  # noqa: BLE001 - the graph runs without announcements
            emit(LAUNCHER, f"no /vla/status announcements ({type(exc).__name__}: {exc})")
            return None

    def _spin(self) -> None:
        try:
            while self.ctx.ok():
                self.executor.spin_once(timeout_sec=0.1)
        except Exception:  # noqa: BLE001 - shutting down
            pass

    def _on_status(self, msg: Any) -> None:
        import json

        try:
            ev = json.loads(msg.data)
        except (json.JSONDecodeError, TypeError):
            return
        if not isinstance(ev, dict) or ev.get("node") != self.OWNER:
            return
        with self._lock:
            if ev.get("event") == "instruction_received":
                self.open_task = str(ev.get("instruction", ""))
            elif ev.get("event") in ("task_succeeded", "task_failed"):
                self.open_task = None

    def publish(self, event: str, level: str, detail: str, **fields: Any) -> None:
        """One status event from node ``launch``."""
        from vla_common.status import make_status

        self.pub.publish(self._String(data=make_status(LAUNCHER, event, level, detail, **fields)))

    def node_exited(self, name: str, code: int, respawn: bool) -> None:
        """Exit callback of :class:`Launcher`: announce it; end the dead policy's task."""
        how = "restarting it" if respawn else "no restarts left"
        self.publish("node_exited", "error", f"node '{name}' exited with {describe_exit(code)}; {how}",
                     name=name, exit=describe_exit(code), respawn=respawn)
        with self._lock:
            task, self.open_task = (self.open_task, None) if name == self.OWNER else (None, self.open_task)
        if task is not None:
            self.publish("task_failed", "error", f"the policy node died mid-task ({describe_exit(code)}); "
                         "the task was abandoned, send it again", instruction=task, reason="node_died")

    def close(self) -> None:
        """Stop the spin thread and the rclpy context."""
        try:
            self.ctx.try_shutdown()
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(timeout=2.0)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``vla launch``."""
    p = argparse.ArgumentParser(prog="vla launch", description="Start a node graph as separate processes "
                                "(the same graph as launch/<graph>.launch.py).")
    p.add_argument("graph", choices=sorted(GRAPHS), help="which node graph to start")
    p.add_argument("--robot", default="ur5", choices=ROBOTS, help="robot model (default: ur5)")
    local = p.add_mutually_exclusive_group()
    local.add_argument("--local", dest="local", action="store_true", default=None,
                       help="keep DDS on this machine (loopback only; default for sim and test graphs)")
    local.add_argument("--no-local", dest="local", action="store_false",
                       help="use the ROS default DDS transports (default for the robot graph)")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID with --local (default: $ROS_DOMAIN_ID, else a random one)")
    p.add_argument("--params-file", action="append", type=Path, default=[],
                   help="extra ROS parameter file applied to every node after its own (repeatable)")
    p.add_argument("--only", default=None, help="comma-separated node names to start (default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    p.add_argument("--respawn", type=int, default=None,
                   help="restart a node that exits up to N times (default: 3 for sim and robot, 0 for test)")
    p.add_argument("--enclave-root", default="",
                   help="SROS2: run node <name> as enclave <root>/<name> (with ROS_SECURITY_KEYSTORE, "
                        "ROS_SECURITY_ENABLE=true, ROS_SECURITY_STRATEGY=Enforce; see the README)")
    p.add_argument("--no-announce", dest="announce", action="store_false",
                   help="do not publish node_exited events on /vla/status")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla launch``."""
    args = build_parser().parse_args(argv)
    nodes = graph(args.graph, robot=args.robot)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {n.name for n in nodes})
        if unknown:
            print(f"vla launch: --only names unknown nodes {unknown}; graph '{args.graph}' has "
                  f"{[n.name for n in nodes]}", file=sys.stderr)
            return 2
        nodes = [n for n in nodes if n.name in wanted]
    local = args.local if args.local is not None else args.graph != "robot"
    env = dict(os.environ)
    if local:
        domain = args.domain_id
        if domain is None and os.environ.get("ROS_DOMAIN_ID", "").isdigit():
            domain = int(os.environ["ROS_DOMAIN_ID"])
        env = localhost_env(domain_id=domain)
        print(f"[{LAUNCHER}] DDS on loopback only, ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} (talk to this graph "
              f"with: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} vla say --local \"...\")", flush=True)
    elif args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    respawn = args.respawn if args.respawn is not None else (0 if args.graph == "test" else 3)
    if respawn < 0:
        print("vla launch: --respawn must be >= 0", file=sys.stderr)
        return 2
    os.environ.update(env)  # the announcer's own rclpy context joins the nodes' DDS domain
    launcher = Launcher(nodes, env=env, extra_params_files=args.params_file, respawn=respawn,
                        announce=args.announce and args.graph != "test" and not args.dry_run)
    launcher.enclave_root = args.enclave_root
    try:
        if args.dry_run:
            for name, cmd in launcher.commands().items():
                print(f"{name}: {' '.join(cmd)}")
            return 0
        return launcher.run()
    except FileNotFoundError as exc:
        print(f"vla launch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
