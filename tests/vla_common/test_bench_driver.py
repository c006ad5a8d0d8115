# SPDX-License-Identifier: Apache-2.0
"""``vla bench`` driver: a failing benchmark is reported and does not stop the others."""

from __future__ import annotations

import json

from vla_common import bench


def test_failures_are_isolated_and_summarised(tmp_path, monkeypatch):
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "vc_good_bench.py").write_text(
        "import json\n"
        "def run(out_dir):\n"
        "    r = {'latency_ms': {'median': 1.5}, 'rate_hz': 30}\n"
        "    (out_dir / 'bench_good.json').write_text(json.dumps(r))\n"
        "    return r\n")
    (pkg / "vc_bad_bench.py").write_text("def run(out_dir):\n    raise RuntimeError('camera on fire')\n")
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setattr(bench, "BENCHMARKS", {"bad": "vc_bad_bench", "good": "vc_good_bench",
                                              "absent": "vc_no_such_bench"})
    out = tmp_path / "results"
    rc = bench.main(["--out", str(out)])
    assert rc == 1
    assert json.loads((out / "bench_good.json").read_text())["rate_hz"] == 30  # ran after the failure
    summary = (out / "bench_summary.md").read_text()
    assert "| bad | failed |" in summary and "camera on fire" in summary
    assert "| good | ok |" in summary and "latency_ms.median=1.5" in summary
    assert "| absent | missing |" in summary


def test_unknown_benchmark_name(capsys):
    assert bench.main(["--only", "warp_drive"]) == 2
    assert "unknown benchmark(s) ['warp_drive']" in capsys.readouterr().err
