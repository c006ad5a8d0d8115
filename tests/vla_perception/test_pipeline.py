# SPDX-License-Identifier: Apache-2.0
"""PerceptionPipeline: compact CLIP + fusion on a rendered scene, timings, degraded input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from percep_scene import render_scene

from vla_perception.fusion import NoUsableViewError
from vla_perception.pipeline import PerceptionConfig, PerceptionPipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipe():
    return PerceptionPipeline(PerceptionConfig())


@pytest.fixture(scope="module")
def frames():
    return render_scene(320, 240)


def test_process_gives_cloud_and_timings(pipe, frames):
    cloud = pipe.process(frames)
    assert len(cloud) > 1000 and cloud.features.shape == (len(cloud), pipe.clip.dim)
    assert np.isfinite(cloud.features).all() and cloud.dropped_views == []
    assert set(pipe.last_timings_ms) >= {"clip", "projection_fusion", "downsampling", "total"}
    assert all(v >= 0 for v in pipe.last_timings_ms.values())
    assert pipe.text(["the red cube"]).shape == (1, pipe.clip.dim)


def test_degraded_views(pipe, frames):
    # rgb of another size than depth/intrinsics: that view is dropped, the others fuse
    bad = dataclasses.replace(frames[1], rgb=frames[1].rgb[::2, ::2].copy())
    cloud = pipe.process([frames[0], bad, frames[2]])
    assert len(cloud.dropped_views) == 1 and cloud.dropped_views[0].startswith("left: malformed")
    assert np.isfinite(cloud.features).all() and len(cloud) > 500
    # one view missing entirely
    cloud = pipe.process([frames[0], None, frames[2]])
    assert cloud.dropped_views == ["view1: missing frame"]
    # views of different resolutions are fine
    small = render_scene(160, 120)
    cloud = pipe.process([frames[0], small[1]])
    assert cloud.dropped_views == []
    # nothing usable: a clear error
    nan = [dataclasses.replace(f, depth=np.full_like(f.depth, np.nan)) for f in frames]
    with pytest.raises(NoUsableViewError, match="no usable camera view"):
        pipe.process(nan)


def test_config_file_matches_the_code():
    cfg = PerceptionConfig.from_yaml(REPO / "config" / "perception.yaml")
    assert cfg.clip_model == "compact" and cfg.fusion.voxel_size_m == 0.005 and cfg.fusion.tau_m == 0.01
    with pytest.raises(ValueError, match="unknown perception parameters"):
        PerceptionConfig.from_dict({"clip_modle": "x"})


def test_overlapped_geometry_gives_the_sequential_result(pipe, frames):
    """The geometry worker thread changes when work happens, not what comes out."""
    seq = PerceptionPipeline(dataclasses.replace(pipe.cfg, overlap_geometry=False), extractor=pipe.clip)
    a, b = pipe.process(frames), seq.process(frames)
    assert pipe.cfg.overlap_geometry and "wait_geometry" in pipe.last_timings_ms
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_allclose(a.features, b.features, atol=1e-6)
    # an error inside the worker thread reaches the caller
    nan = [dataclasses.replace(f, depth=np.full_like(f.depth, np.nan)) for f in frames]
    with pytest.raises(NoUsableViewError, match="top: no valid depth"):
        pipe.process(nan)


def test_bad_feature_map_after_geometry_drops_the_view(frames):
    """A view whose CLIP map is unusable is dropped at fusion time; its points stay only where
    another view sees them, and no feature is NaN."""
    import torch

    from vla_perception.fusion import fuse_features, fusion_geometry

    geometry = fusion_geometry(frames)
    maps = [torch.ones(4, 15, 20), torch.full((4, 15, 20), float("nan")), torch.ones(4, 15, 20)]
    cloud = fuse_features(geometry, maps)
    assert cloud.dropped_views == ["left: feature map has non-finite values"]
    assert np.isfinite(cloud.features).all() and 500 < len(cloud) <= len(geometry.xyz)
    assert (cloud.n_views <= 2).all()


def test_threads_zero_is_automatic():
    from vla_perception.pipeline import auto_threads

    assert auto_threads(False) >= auto_threads(True) >= 1
    with pytest.raises(ValueError, match="threads must be >= 0"):
        PerceptionPipeline(PerceptionConfig(threads=-2))
