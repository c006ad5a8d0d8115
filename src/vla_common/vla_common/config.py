# SPDX-License-Identifier: Apache-2.0
"""YAML configuration: safe loading with clear errors, ROS parameter files, small typed validation.

Config files are ROS 2 parameter files (top-level key = node name or ``/**``, then
``ros__parameters``) so the same file feeds ``--params-file`` for a node and plain-Python code such
as evaluation or benchmarks. Loading always uses ``yaml.safe_load``. Every error names the file
and the key, and says what was expected, so a typo in a config is fixed in one go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file that is missing, unparsable or invalid (a ValueError naming file and key)."""


def load_yaml(path: str | Path, schema: Mapping[str, Field] | None = None) -> dict[str, Any]:
    """Load a YAML file whose top level is a mapping.

    Args:
        path: file to read.
        schema: optional ``{key: Field}`` checked with :func:`validate` (defaults filled in).

    Returns:
        The mapping (an empty file gives ``{}``).

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML (the message gives the
            line and column), its top level is not a mapping, or it fails ``schema``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (check the path, or run from the repository "
                          f"root / set VLA_CONFIG_DIR)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (key: value), got {type(data).__name__}")
    if schema is not None:
        data = validate(data, schema, where=str(path))
    return data


def load_node_params(path: str | Path, node_name: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` in a ROS 2 parameter file.

    Parameters under ``/**`` apply to every node; the node's own section (``name`` or
    ``/name``) overrides them key by key, as ``--params-file`` does.

    Raises:
        ConfigError: unreadable file, or neither the node nor ``/**`` has a ``ros__parameters``
            mapping.
    """
    data = load_yaml(path)
    merged: dict[str, Any] = {}
    found = False
    for key in ("/**", node_name.lstrip("/"), "/" + node_name.lstrip("/")):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ConfigError(f"{path}: section '{key}' must contain a 'ros__parameters' mapping")
        merged.update(section["ros__parameters"])
        found = True
    if not found:
        raise ConfigError(f"{path}: no parameters for node '{node_name}' (top-level keys: {sorted(data)}); "
                          f"add '{node_name}: {{ros__parameters: {{...}}}}'")
    return merged


_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One expected config key.

    Attributes:
        type: accepted Python type(s); ``float`` also accepts ints (YAML writes ``1`` for 1.0).
        default: value used when the key is absent; no default means the key is required.
        min: inclusive lower bound for numbers (or each element of a list of numbers).
        max: inclusive upper bound.
        choices: allowed values.
        length: required length for lists.
        doc: one line shown in errors.
    """

    type: type | tuple[type, ...]
    default: Any = _MISSING
    min: float | None = None
    max: float | None = None
    choices: Sequence[Any] | None = None
    length: int | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        """Whether the key must be present."""
        return self.default is _MISSING


def _type_ok(value: Any, expected: type | tuple[type, ...]) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False  # YAML true/false must not pass as a number
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def validate(data: Mapping[str, Any], schema: Mapping[str, Field], where: str = "config",
             allow_unknown: bool = False) -> dict[str, Any]:
    """Check ``data`` against ``schema`` and return a copy with defaults filled in.

    Args:
        data: the loaded mapping.
        schema: ``{key: Field}``.
        where: what to call the source in errors (usually the file path).
        allow_unknown: accept keys that are not in the schema (default: reject them, since an
            unknown key is almost always a typo).

    Raises:
        ConfigError: naming the key: missing, unknown, wrong type, out of range or not a choice.
    """
    out = dict(data)
    unknown = sorted(set(data) - set(schema))
    if unknown and not allow_unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected keys: {sorted(schema)}")
    for key, spec in schema.items():
        if key not in data:
            if spec.required:
                hint = f" ({spec.doc})" if spec.doc else ""
                raise ConfigError(f"{where}: missing required key '{key}'{hint}")
            out[key] = spec.default
            continue
        value = data[key]
        if not _type_ok(value, spec.type):
            raise ConfigError(f"{where}: key '{key}' must be {_type_name(spec.type)}, got "
                              f"{type(value).__name__} {value!r}")
        if spec.length is not None and isinstance(value, (list, tuple)) and len(value) != spec.length:
            raise ConfigError(f"{where}: key '{key}' must have {spec.length} elements, got {len(value)}")
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(f"{where}: key '{key}' must be one of {list(spec.choices)}, got {value!r}")
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for v in numbers:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if spec.min is not None and v < spec.min:
                raise ConfigError(f"{where}: key '{key}' must be >= {spec.min}, got {v}")
            if spec.max is not None and v > spec.max:
                raise ConfigError(f"{where}: key '{key}' must be <= {spec.max}, got {v}")
    return out
