# SPDX-License-Identifier: Apache-2.0
"""requirements.lock: written from pip's installation report, every line pinned with a sha256."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from vla_common.lockfile import lock_lines, source_md5, write_lock

ROOT = Path(__file__).resolve().parents[2]


def _item(name, version, sha="ab" * 32):
    return {"metadata": {"name": name, "version": version},
            "download_info": {"url": f"file:///x/{name}.whl", "archive_info": {"hashes": {"sha256": sha}}}}


def test_lock_lines_pin_and_hash_every_distribution(tmp_path):
    report = {"install": [_item("torch", "2.14.1"), _item("PyYAML", "6.0.2", "cd" * 32)]}
    req = tmp_path / "requirements.txt"
    req.write_text("pyyaml==6.0.2\n")
    out = io.StringIO()
    assert write_lock(report, out, req) == 2
    text = out.getvalue()
    assert f"# requirements.txt md5: {source_md5(req)}" in text
    assert "PyYAML==6.0.2 \\\n    --hash=sha256:" + "cd" * 32 in text
    assert text.index("PyYAML") < text.index("torch")  # sorted, case-insensitive


def test_lock_refuses_what_cannot_be_hashed():
    no_hash = _item("vla-stack", "0.1")
    no_hash["download_info"] = {"url": "file:///work/main", "dir_info": {"editable": True}}
    with pytest.raises(ValueError, match="vla-stack"):
        lock_lines({"install": [no_hash]})
    with pytest.raises(ValueError, match="installation report"):
        lock_lines({"version": "1"})


def test_shipped_lock_hashes_every_line():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = [ln for ln in lines if re.match(r"^[A-Za-z0-9_.\-]+==", ln)]
    hashes = [ln for ln in lines if ln.strip().startswith("--hash=sha256:")]
    assert len(pins) > 50 and len(pins) == len(hashes)
    assert any(p.startswith("torch==2.14.1") for p in pins)
