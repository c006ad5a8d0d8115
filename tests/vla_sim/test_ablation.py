# SPDX-License-Identifier: Apache-2.0
"""The ablation table reads vla eval outputs per variant and reports rates with Wilson intervals."""

from __future__ import annotations

import json

import pytest

from vla_sim.ablation import collect, main, wilson


def _result(task: str, split: str, first: float, success: float, n: int = 20, phrasing: str = "templated"):
    return {"meta": {"task": task, "split": split, "phrasing": phrasing},
            "summary": {"episodes": n, "success_rate": success, "first_attempt_success_rate": first}}


def test_wilson_interval_contains_the_rate_and_narrows_with_n():
    lo, hi = wilson(14, 20)
    assert lo < 0.7 < hi and hi - lo == pytest.approx(0.38, abs=0.02)
    lo2, hi2 = wilson(140, 200)
    assert hi2 - lo2 < (hi - lo) / 2
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def test_table_uses_first_attempt_for_grasp_and_success_for_place(tmp_path):
    for variant, first in (("SR", 0.9), ("BASE", 0.5)):
        d = tmp_path / "abl" / variant
        d.mkdir(parents=True)
        (d / "eval_x_grasp_unseen.json").write_text(json.dumps(_result("grasp", "unseen", first, 1.0)))
        (d / "eval_x_place_unseen.json").write_text(json.dumps(_result("place", "unseen", None, 0.8)))
        (d / "eval_x_grasp_unseen_heldout.json").write_text(
            json.dumps(_result("grasp", "unseen", first, 1.0, phrasing="heldout")))
    table = collect(tmp_path / "abl")
    assert table["SR"]["grasp unseen"]["rate"] == 0.9 and table["BASE"]["grasp unseen"]["rate"] == 0.5
    assert table["SR"]["place unseen"]["rate"] == 0.8
    assert "grasp unseen (heldout)" in table["SR"]
    out = tmp_path / "res" / "abl"
    assert main(["--root", str(tmp_path / "abl"), "--out", str(out), "--order", "BASE", "SR"]) == 0
    md = out.with_suffix(".md").read_text()
    assert md.index("| BASE |") < md.index("| SR |") and "0.90 [" in md
    assert out.with_suffix(".png").stat().st_size > 1000


def test_empty_root_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no vla eval results"):
        collect(tmp_path)
