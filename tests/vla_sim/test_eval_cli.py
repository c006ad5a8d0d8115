# SPDX-License-Identifier: Apache-2.0
"""``vla eval`` workflow: runs per case, worker processes, resume, and the tables' rates.

Episodes run in real physics with the random policy on place cases (one decision each) at
160x120 with the TinyRenderer, so the whole file takes seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from vla_sim.evaluation import (
    EpisodeNoise,
    EpisodeResult,
    episode_seeds,
    evaluate,
    main,
    markdown_table,
    summarize,
)
from vla_sim.scenes import CaseSet, case_path

STEM = "eval_random_place_seen"


def _strip(eps: list[dict]) -> list[dict]:
    """Episode records without the wall time (the only field that depends on the machine)."""
    return [{k: v for k, v in e.items() if k != "wall_s"} for e in eps]


@pytest.fixture(scope="module")
def two_cases(tmp_path_factory):
    path = tmp_path_factory.mktemp("cases") / "two.json"
    CaseSet("two", CaseSet.load(case_path("place", "seen")).cases[:2]).save(path)
    return path


def _args(cases, out, *extra: str) -> list[str]:
    return ["--policy", "random", "--task", "place", "--cases", str(cases), "--out", str(out),
            "--renderer", "tiny", "--render-size", "160x120", "--no-progress", "--runs", "2", *extra]


def test_episode_noise_is_seeded_by_case_and_run():
    depth = np.full((12, 16), 0.8, np.float32)
    a = EpisodeNoise(0.002, episode_seeds(0, 3, 0)[0]).apply(depth)
    again = EpisodeNoise(0.002, episode_seeds(0, 3, 0)[0]).apply(depth, np.random.default_rng(99))
    other_run = EpisodeNoise(0.002, episode_seeds(0, 3, 1)[0]).apply(depth)
    other_case = EpisodeNoise(0.002, episode_seeds(0, 4, 0)[0]).apply(depth)
    assert np.array_equal(a, again)  # the world's generator is not used
    assert not np.allclose(a, other_run) and not np.allclose(a, other_case)
    assert 0.0005 < float(np.std(a - depth)) < 0.004


def test_runs_on_workers_reproduce_in_process_and_resume(tmp_path, two_cases, capsys):
    out = tmp_path / "a"
    assert main(_args(two_cases, out, "--workers", "2")) == 0
    data = json.loads((out / f"{STEM}.json").read_text())
    eps = data["episodes"]
    assert [(e["case"], e["run"]) for e in eps] == [(0, 0), (0, 1), (1, 0), (1, 1)]  # case order
    assert data["meta"]["noise_sigma_m"] == 0.002  # the default with several runs
    s = data["summary"]
    assert s["episodes"] == 4 and s["cases"] == 2 and s["runs"] == 2 and len(s["per_case"]) == 2
    assert len(s["success_rate_by_run"]) == 2
    md = (out / f"{STEM}.md").read_text()
    assert "first_attempt_success_rate" in md and "Per case over 2 runs" in md
    log = (out / f"{STEM}.episodes.jsonl").read_text().splitlines()
    assert len(log) == 5 and "settings" in json.loads(log[0])

    # the same episodes in this process, on one world: the same outcomes (noise and policy draws
    # belong to (case, run), not to a worker); the two runs of a case are not copies
    results, _ = evaluate("random", "place", "seen", 2, two_cases, render_size=(160, 120),
                          noise_sigma_m=0.002, renderer="tiny", progress=False, runs=2)
    assert _strip([asdict(r) for r in results]) == _strip([{k: v for k, v in e.items()
                                                            if k not in ("case", "run")} for e in eps])
    assert any(eps[2 * c]["sim_time_s"] != eps[2 * c + 1]["sim_time_s"] for c in range(2))

    # a run killed after one episode, in the middle of writing the next line
    part = tmp_path / "b"
    part.mkdir()
    (part / f"{STEM}.episodes.jsonl").write_text("\n".join(log[:2]) + "\n" + log[2][:40])
    assert main(_args(two_cases, part)) == 0
    relog = (part / f"{STEM}.episodes.jsonl").read_text().splitlines()
    assert len(relog) == 5 and relog[1] == log[1]  # the finished episode was kept, not rerun
    again = json.loads((part / f"{STEM}.json").read_text())
    assert _strip(again["episodes"]) == _strip(eps)

    # rerunning when all are done runs nothing and writes the same tables
    assert main(_args(two_cases, part)) == 0
    assert len((part / f"{STEM}.episodes.jsonl").read_text().splitlines()) == 5

    capsys.readouterr()
    with pytest.raises(SystemExit):  # other settings into the same log: refused, nothing mixed
        main(_args(two_cases, part, "--noise-sigma", "0.01"))
    err = capsys.readouterr().err
    assert "other settings" in err and "noise_sigma_m" in err
    assert len((part / f"{STEM}.episodes.jsonl").read_text().splitlines()) == 5


def test_bad_run_and_worker_counts_are_refused(tmp_path, two_cases):
    for extra in (["--workers", "0"], ["--runs", "0"], ["--noise-sigma", "-1"]):
        with pytest.raises(SystemExit):
            main(_args(two_cases, tmp_path, *extra))
    assert not list(tmp_path.glob("*.jsonl"))


def _res(seed: int, success: bool, attempts: int) -> EpisodeResult:
    return EpisodeResult("grasp", "seen", seed, f"grasp {seed}", success, success, None, attempts, 1.0, 0.1,
                         grasp_attempts=attempts)


def test_summary_separates_first_attempt_from_within_eight_and_spreads_runs():
    # case 0: first attempt, then after 3 attempts; case 1: fails both runs (8 decisions)
    results = [_res(0, True, 1), _res(0, True, 3), _res(1, False, 8), _res(1, False, 8)]
    s = summarize(results, runs=2)
    assert s["first_attempt_success_rate"] == 0.25 and s["grasp_success_rate"] == 0.5
    assert s["mean_steps"] == 5.0 and s["success_rate_by_run"] == [0.5, 0.5]
    assert s["success_rate_std_over_runs"] == 0.0 and s["mixed_cases"] == 0
    assert [pc["successes"] for pc in s["per_case"]] == [2, 0]
    assert [pc["first_attempt_successes"] for pc in s["per_case"]] == [1, 0]
    md = markdown_table({"policy": "x", "task": "grasp", "split": "seen"}, s)
    assert "| 0 | 0 | grasp 0 | 2/2 | 1/2 | 2.00 ± 1.41 |" in md
    with pytest.raises(ValueError):
        summarize(results[:3], runs=2)


@pytest.mark.parametrize("task", ["grasp", "place", "pickplace"])
@pytest.mark.parametrize("split", ["seen", "unseen"])
def test_heldout_phrasing_fills_a_held_out_template_with_the_case_slots(task, split):
    """``--phrasing heldout``: each case sentence is said anew from a held-out template holding its
    object phrase and reference (whether the robot reads it right is what the benchmark measures)."""
    import re

    from vla_common.language import parse_instruction
    from vla_policy.eval_language import load_heldout
    from vla_sim.evaluation import HELDOUT_SET, heldout_text

    held = {k: v + [t.replace("the {object}", "{object}").replace("that {object}", "{object}") for t in v]
             for k, v in load_heldout()[HELDOUT_SET].items() if k != "ungroundable"}
    for i, sc in enumerate(CaseSet.load(case_path(task, split)).cases):
        text = sc.instruction["text"]
        a = parse_instruction(text)
        new = heldout_text(text, np.random.default_rng([0, i, 17]))
        assert new != text
        assert any(re.fullmatch(re.escape(t).replace(r"\{object\}", ".+").replace(r"\{relation\}", ".+")
                                .replace(r"\{reference\}", ".+"), new) for t in held[a.kind]), new
        assert (a.object or "") in new and (a.reference or "") in new


def test_heldout_phrasing_is_recorded_and_kept_apart_from_templated(tmp_path, two_cases):
    out = tmp_path / "held"
    assert main(_args(two_cases, out, "--phrasing", "heldout")) == 0
    blob = json.loads((out / f"{STEM}_heldout.json").read_text())
    assert blob["meta"]["phrasing"] == "heldout"
    cases = CaseSet.load(two_cases).cases
    assert all(e["instruction"] != cases[e["case"]].instruction["text"] for e in blob["episodes"])
    assert "phrasing" in (out / f"{STEM}_heldout.md").read_text()
    assert main(_args(two_cases, out)) == 0  # the templated run keeps its own files and log
    plain = json.loads((out / f"{STEM}.json").read_text())
    assert all(e["instruction"] == cases[e["case"]].instruction["text"] for e in plain["episodes"])
