# SPDX-License-Identifier: Apache-2.0
"""Keep a node alive through bad input: guarded callbacks and start-up parameter checks.

:func:`vla_common.node_runner.spin_node` applies both to every node of the stack, so no node
needs its own try/except around each callback:

* :func:`guard_callbacks` wraps every subscription and timer callback of a node. An exception
  raised by a callback (a malformed message, a NaN the conversion did not expect, a bug that only
  some input reaches) is caught, counted per topic (:class:`CallbackGuard.counts`), logged
  (the first few times per topic, then every 100th) and reported once per occurrence on
  ``/vla/status`` as ``bad_message`` (subscriptions: fields ``topic``, ``count``, ``error``) or
  ``callback_error`` (timers). The node keeps spinning; the message is dropped.
* :func:`check_parameter_overrides` refuses, at start-up, parameters given in a params file or on
  the command line that the node never declared: an unknown key is almost always a typo, and
  ROS would otherwise ignore it silently (a wrong type already fails in ``declare_parameter``).

Both only need an ``rclpy`` node; the wrapping itself is plain Python.
"""

from __future__ import annotations

import functools
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from vla_common.status import make_status

LOG_FIRST_N = 3      # log every one of the first N errors per topic, then every LOG_EVERY-th
LOG_EVERY = 100
# Parameters rclpy or ROS tooling may set on any node without the node declaring them.
ALWAYS_ALLOWED = ("use_sim_time", "start_type_description_service")
ALLOWED_PREFIXES = ("qos_overrides.",)


class ParameterError(ValueError):
    """A node was given parameters it does not know (raised at start-up, naming them)."""


def check_parameter_overrides(node: Any) -> None:
    """Raise :class:`ParameterError` when ``node`` got parameters it did not declare.

    Call after the node's ``__init__`` has declared everything it reads.
    """
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    declared = set(getattr(node, "_parameters", {}) or {})
    unknown = sorted(name for name in overrides
                     if name not in declared and name not in ALWAYS_ALLOWED
                     and not name.startswith(ALLOWED_PREFIXES))
    if unknown:
        raise ParameterError(
            f"node '{node.get_name()}' does not know parameter(s) {unknown} (a typo in its params file or "
            f"-p override?); it declares: {sorted(declared)}")


class CallbackGuard:
    """Wraps one node's callbacks so that an exception is reported, not fatal (module docstring)."""

    def __init__(self, node: Any, status_topic: str = "/vla/status") -> None:
        self.node = node
        self.counts: Counter[str] = Counter()
        self._pub = None
        self._status_topic = status_topic

    def _publish(self, event: str, detail: str, **fields: Any) -> None:
        try:
            if self._pub is None:
                from std_msgs.msg import String

                from vla_common.qos import EVENT_QOS

                self._pub = self.node.create_publisher(String, self._status_topic, EVENT_QOS)
                self._String = String
            self._pub.publish(self._String(data=make_status(self.node.get_name(), event, "warn", detail,
                                                            **fields)))
        except Exception:  # noqa: BLE001 - reporting must never be what kills the node
            pass

    def report(self, where: str, exc: BaseException, event: str) -> None:
        """Count, log and publish one caught exception raised while handling ``where``."""
        self.counts[where] += 1
        n = self.counts[where]
        error = f"{type(exc).__name__}: {exc}"[:500]
        what = "message on" if event == "bad_message" else "callback"
        detail = f"dropped a bad {what} {where} ({error}); the node keeps running"
        if n <= LOG_FIRST_N or n % LOG_EVERY == 0:
            try:
                self.node.get_logger().error(f"{event} #{n} on {where}: {error}\n"
                                             + "".join(traceback.format_exception(exc)[-3:]))
            except Exception:  # noqa: BLE001
                pass
        self._publish(event, detail, topic=where, count=n, error=error)

    def wrap(self, fn: Callable[..., Any], where: str, event: str) -> Callable[..., Any]:
        """``fn`` with its exceptions caught and reported (KeyboardInterrupt/SystemExit pass)."""
        if getattr(fn, "_vla_guarded", False):
            return fn

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the point of the guard
                if _shutting_down(exc):
                    raise
                self.report(where, exc, event)
                return None

        guarded._vla_guarded = True  # type: ignore[attr-defined]
        return guarded


def _shutting_down(exc: BaseException) -> bool:
    """True for the errors rclpy raises while the context shuts down (let spin_node handle them)."""
    name = type(exc).__name__
    if name in ("ExternalShutdownException", "RCLError", "InvalidHandle"):
        try:
            import rclpy

            return not rclpy.ok()
        except Exception:  # noqa: BLE001
            return True
    return False


def guard_callbacks(node: Any) -> CallbackGuard:
    """Wrap every subscription and timer callback of ``node``; returns the guard (counts).

    Those the node has now are wrapped in place; ``create_subscription`` / ``create_timer`` are
    wrapped too, so entities made later (a lifecycle node's ``on_configure``) are guarded as well.
    """
    guard = CallbackGuard(node)
    for sub in list(getattr(node, "subscriptions", [])):
        sub.callback = guard.wrap(sub.callback, sub.topic_name, "bad_message")
    for tmr in list(getattr(node, "timers", [])):
        name = getattr(tmr.callback, "__name__", "timer")
        tmr.callback = guard.wrap(tmr.callback, f"timer {name}", "callback_error")
    create_sub, create_timer = node.create_subscription, node.create_timer

    def create_subscription(msg_type: Any, topic: str, callback: Callable[..., Any], *args: Any,
                            **kwargs: Any) -> Any:
        return create_sub(msg_type, topic, guard.wrap(callback, topic, "bad_message"), *args, **kwargs)

    def create_timer_guarded(period: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        name = getattr(callback, "__name__", "timer")
        return create_timer(period, guard.wrap(callback, f"timer {name}", "callback_error"), *args, **kwargs)

    node.create_subscription = create_subscription
    node.create_timer = create_timer_guarded
    node._vla_guard = guard
    return guard
