# SPDX-License-Identifier: Apache-2.0
"""The one ``main()`` body every rclpy node of the stack shares: init, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

try:  # the rclpy C extension's error type (a publish racing the shutdown raises it)
    from rclpy._rclpy_pybind11 import RCLError
except ImportError:  # pragma: no cover (older/newer rclpy layouts)
    RCLError = RuntimeError


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Create the node with ``make_node`` and spin it until Ctrl-C, SIGTERM or an external shutdown.

    A construction error propagates (with the node's message); an RCLError raised after the
    context was shut down (a timer publishing during shutdown) is not an error.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
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
