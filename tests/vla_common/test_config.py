# SPDX-License-Identifier: Apache-2.0
"""YAML config loading and validation: clear errors naming file, line and key."""

from __future__ import annotations

import pytest

from vla_common.config import ConfigError, Field, load_node_params, load_yaml, validate


def test_load_yaml_ok_and_empty(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("a: 1\nb: [1, 2]\n")
    assert load_yaml(p) == {"a": 1, "b": [1, 2]}
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found.*nope.yaml"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping.*list"):
        load_yaml(lst)
    tagged = tmp_path / "tag.yaml"
    tagged.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):  # safe_load refuses Python tags
        load_yaml(tagged)


def test_load_node_params(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("/**:\n  ros__parameters:\n    use_sim_time: true\n    rate_hz: 1.0\n"
                 "policy:\n  ros__parameters:\n    rate_hz: 5.0\n    top_k: 8\n"
                 "broken:\n  params: {}\n")
    assert load_node_params(p, "policy") == {"use_sim_time": True, "rate_hz": 5.0, "top_k": 8}
    assert load_node_params(p, "other") == {"use_sim_time": True, "rate_hz": 1.0}
    with pytest.raises(ConfigError, match="'broken' must contain a 'ros__parameters'"):
        load_node_params(p, "broken")
    only = tmp_path / "only.yaml"
    only.write_text("policy:\n  ros__parameters: {a: 1}\n")
    with pytest.raises(ConfigError, match="no parameters for node 'executor'"):
        load_node_params(only, "executor")


SCHEMA = {
    "rate_hz": Field(float, min=0.1, max=100.0),
    "mode": Field(str, default="sim", choices=["sim", "robot"]),
    "top_k": Field(int, default=8, min=1),
    "xyz": Field(list, default=[0, 0, 0], length=3, min=-1.0, max=1.0),
    "enabled": Field(bool, default=True),
}


def test_validate_fills_defaults_and_accepts_int_for_float():
    out = validate({"rate_hz": 10}, SCHEMA)
    assert out == {"rate_hz": 10, "mode": "sim", "top_k": 8, "xyz": [0, 0, 0], "enabled": True}


@pytest.mark.parametrize("data, pattern", [
    ({}, "missing required key 'rate_hz'"),
    ({"rate_hz": "fast"}, "'rate_hz' must be float, got str"),
    ({"rate_hz": True}, "'rate_hz' must be float, got bool"),
    ({"rate_hz": 0.0}, "'rate_hz' must be >= 0.1"),
    ({"rate_hz": 1e3}, "'rate_hz' must be <= 100"),
    ({"rate_hz": 1.0, "mode": "real"}, "'mode' must be one of"),
    ({"rate_hz": 1.0, "top_k": 2.5}, "'top_k' must be int"),
    ({"rate_hz": 1.0, "xyz": [0, 0]}, "'xyz' must have 3 elements"),
    ({"rate_hz": 1.0, "xyz": [0, 2, 0]}, "'xyz' must be <= 1.0, got 2"),
    ({"rate_hz": 1.0, "rate": 2.0}, r"unknown key\(s\) \['rate'\]"),
])
def test_validate_errors_name_the_key(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate(data, SCHEMA, where="cfg.yaml")


def test_load_yaml_with_schema(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("rate_hz: 500\n")
    with pytest.raises(ConfigError, match=r"c.yaml: key 'rate_hz' must be <= 100"):
        load_yaml(p, SCHEMA)
    assert issubclass(ConfigError, ValueError)
