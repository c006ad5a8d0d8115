# SPDX-License-Identifier: Apache-2.0
"""Node parameters validated when they are set at run time, not only at start.

:func:`validate_on_set` registers one ``add_on_set_parameters_callback`` on a node. A set request
(``ros2 param set``, a SetParameters service call, ``node.set_parameters``) is refused as a whole,
with a reason, when any parameter in it is read-only after start (it shaped something built at
start: a checkpoint, a timer, a robot model) or breaks its rule; otherwise each new value is handed
to ``apply`` so the node uses it from then on. Needs rclpy (nodes only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rcl_interfaces.msg import SetParametersResult

# a rule returns None when the value is fine, else the reason it is not
Rule = Callable[[Any], str | None]


def at_least(lo: float, integer: bool = False) -> Rule:
    """Rule: a number >= lo (an int when ``integer``)."""
    def rule(v: Any) -> str | None:
        if integer and (not isinstance(v, int) or isinstance(v, bool)):
            return f"must be an integer >= {lo}, got {v!r}"
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= lo:
            return f"must be >= {lo}, got {v!r}"
        return None
    return rule


def positive() -> Rule:
    """Rule: a finite number > 0."""
    def rule(v: Any) -> str | None:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < float("inf"):
            return f"must be a finite number > 0, got {v!r}"
        return None
    return rule


def in_range(lo: float, hi: float, integer: bool = False) -> Rule:
    """Rule: lo <= value <= hi (an int when ``integer``)."""
    def rule(v: Any) -> str | None:
        if integer and (not isinstance(v, int) or isinstance(v, bool)):
            return f"must be an integer in [{lo}, {hi}], got {v!r}"
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
            return f"must be in [{lo}, {hi}], got {v!r}"
        return None
    return rule


def validate_on_set(node: Any, rules: dict[str, Rule], read_only: Iterable[str],
                    apply: Callable[[str, Any], None]) -> None:
    """Validate the node's current parameter values and every later change (module docstring).

    Raises:
        ValueError: a current value breaks its rule (the node must not start with it).

    Args:
        node: the rclpy node (call after declaring its parameters).
        rules: parameter name -> rule, for the parameters that may change at run time.
        read_only: names that may not change after start.
        apply: called as ``apply(name, value)`` for each accepted change.
    """
    frozen = set(read_only)
    for name, rule in rules.items():  # the same rules for the values the node starts with
        if node.has_parameter(name):
            why = rule(node.get_parameter(name).value)
            if why:
                raise ValueError(f"parameter {name} {why}")

    def on_set(params: list) -> SetParametersResult:
        for p in params:
            if p.name in frozen:
                why = f"{p.name} is read-only after start; restart the node to change it"
                return SetParametersResult(successful=False, reason=why)
            rule = rules.get(p.name)
            if rule is not None:
                why = rule(p.value)
                if why:
                    return SetParametersResult(successful=False, reason=f"{p.name} {why}")
        for p in params:
            if p.name in rules:
                apply(p.name, p.value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
