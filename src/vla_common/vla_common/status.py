# SPDX-License-Identifier: Apache-2.0
"""The /vla/status event format: one JSON object per message (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import math
from typing import Any

LEVELS = ("info", "warn", "error")


def _jsonable(value: Any) -> Any:
    """Numpy scalars/arrays and non-finite floats made JSON-safe."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def make_status(node: str, event: str, level: str = "info", detail: str = "", **fields: Any) -> str:
    """One status event as a JSON string with at least node, event, level and detail."""
    if level not in LEVELS:
        raise ValueError(f"status level must be one of {LEVELS}, got {level!r}")
    payload = {"node": node, "event": event, "level": level, "detail": detail}
    payload.update({k: _jsonable(v) for k, v in fields.items()})
    return json.dumps(payload)


def parse_status(text: str) -> dict[str, Any]:
    """Parse one status message; raise ValueError when it is not a status JSON object."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"status message is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or not {"node", "event", "level", "detail"} <= obj.keys():
        raise ValueError("status message must be an object with node, event, level and detail")
    return obj
