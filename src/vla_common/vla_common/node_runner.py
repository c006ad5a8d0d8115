# SPDX-License-Identifier: Apache-2.0
"""The one ``main()`` body every rclpy node of the stack shares: init, spin, clean shutdown."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

try:  # the rclpy C extension's error type (a publish racing the shutdown raises it)
    from rclpy._rclpy_pybind11 import RCLError
except ImportError:  # pragma: no cover (older/newer rclpy layouts)
    RCLError = RuntimeError


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None,
              threads: int | Callable[[Node], int] = 1) -> None:
    """Create the node with ``make_node`` and spin it until Ctrl-C, SIGTERM or an external shutdown.

    ``threads`` > 1 spins a ``MultiThreadedExecutor`` with that many threads: callbacks in different
    callback groups then run at the same time (the executor's e-stop while MoveIt blocks). It may be
    a function of the constructed node. rclpy's MultiThreadedExecutor costs latency: measured on the
    2-core machine, the sim e-stop took 0.10-0.55 s of sim time to still the arm with 2 or 4 threads
    and 0.017 s single-threaded, so nodes use it only where a callback must block.

    A construction error is printed as one line (``[name] cannot start: ...``) and exits with
    status 2 (``SystemExit``); an RCLError raised after the
    context was shut down (a timer publishing during shutdown) is not an error. Parameters the
    node did not declare are refused at start (:func:`vla_common.guard.check_parameter_overrides`),
    and every subscription and timer callback is guarded (:func:`vla_common.guard.guard_callbacks`):
    a bad message is logged, counted and reported as a ``bad_message`` status, never fatal.
    """
    from vla_common.guard import check_parameter_overrides, guard_callbacks

    try:
        rclpy.init(args=args)
    except Exception as exc:  # noqa: BLE001 - e.g. a params file that is not valid YAML
        print(f"[node] cannot start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    node = None
    try:
        try:
            node = make_node()
            check_parameter_overrides(node)
        except Exception as exc:  # noqa: BLE001 - one clear line, then a non-zero exit
            if isinstance(exc, RCLError) and not rclpy.ok():
                raise
            who = node.get_name() if node is not None else "node"
            print(f"[{who}] cannot start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from exc
        guard_callbacks(node)
        if callable(threads):
            threads = int(threads(node))
        if threads > 1:  # callback groups run in parallel (e-stop and cancel while a callback plans)
            from rclpy.executors import MultiThreadedExecutor

            rclpy.spin(node, executor=MultiThreadedExecutor(num_threads=threads))
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():  # a real failure, not a publish racing the shutdown
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def destroy_entities(node: Node, entities: list) -> None:
    """Destroy the subscriptions and timers a lifecycle node made in ``on_configure``; empties the list.

    Shared by the lifecycle nodes' cleanup / shutdown transitions (perception, executor).
    """
    for e in entities:
        if hasattr(e, "cancel"):  # a timer
            node.destroy_timer(e)
        else:
            node.destroy_subscription(e)
    entities.clear()
