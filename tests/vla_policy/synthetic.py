# SPDX-License-Identifier: Apache-2.0
"""Synthetic feature-cloud decisions for policy tests: objects = point clusters with a CLIP-like feature."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_batch(n: int, num_points: int = 128, num_objects: int = 4, feature_dim: int = 16,
               cands_per_object: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """n decisions; the instruction names one object (its feature + noise); label = a candidate on it."""
    g = torch.Generator().manual_seed(seed)
    vocab = F.normalize(torch.randn(8, feature_dim, generator=g), dim=-1)  # 8 object "concepts"
    per = num_points // num_objects
    xyz, feats, cands, labels, targets, texts = [], [], [], [], [], []
    for _ in range(n):
        concepts = torch.randperm(8, generator=g)[:num_objects]
        centers = torch.rand(num_objects, 3, generator=g) * torch.tensor([0.4, 0.4, 0.05])
        pts = centers.repeat_interleave(per, 0) + 0.015 * torch.randn(num_objects * per, 3, generator=g)
        noise = 0.1 * torch.randn(num_objects * per, feature_dim, generator=g)
        f = vocab[concepts].repeat_interleave(per, 0) + noise
        tgt = int(torch.randint(num_objects, (1,), generator=g))
        c_xyz = centers.repeat_interleave(cands_per_object, 0) + 0.01 * torch.randn(
            num_objects * cands_per_object, 3, generator=g)
        quat = F.normalize(torch.randn(num_objects * cands_per_object, 4, generator=g), dim=-1)
        lab = tgt * cands_per_object + int(torch.randint(cands_per_object, (1,), generator=g))
        xyz.append(pts)
        feats.append(F.normalize(f, dim=-1))
        cands.append(torch.cat([c_xyz, quat], -1))
        labels.append(lab)
        targets.append(c_xyz[lab])
        texts.append(F.normalize(vocab[concepts[tgt]] + 0.05 * torch.randn(feature_dim, generator=g), dim=-1))
    c = num_objects * cands_per_object
    return {
        "xyz": torch.stack(xyz),
        "features": torch.stack(feats),
        "point_mask": torch.ones(n, num_objects * per, dtype=torch.bool),
        "text": torch.stack(texts)[:, None, :],
        "text_mask": torch.ones(n, 1, dtype=torch.bool),
        "candidates": torch.stack(cands),
        "cand_mask": torch.ones(n, c, dtype=torch.bool),
        "label": torch.tensor(labels),
        "target_xyz": torch.stack(targets),
    }


def write_shards(out_dir, n_episodes: int = 12, feature_dim: int = 16, seed: int = 0) -> None:
    """Shards in the `vla collect` format from synthetic decisions (one sample per episode)."""
    import numpy as np
    from scipy.spatial.transform import Rotation

    from vla_policy.data import ShardWriter

    names = [f"obj{i}" for i in range(8)]
    b = make_batch(n_episodes, feature_dim=feature_dim, seed=seed)
    w = ShardWriter(out_dir, worker=0, shard_size=5)
    for i in range(n_episodes):
        c7 = b["candidates"][i].numpy().astype(np.float64)
        T = np.tile(np.eye(4), (len(c7), 1, 1))
        T[:, :3, :3] = Rotation.from_quat(c7[:, 3:]).as_matrix()
        T[:, :3, 3] = c7[:, :3]
        lab = int(b["label"][i])
        # the scene holds 4 of the 8 concepts; recover them from the features' nearest vocab row
        g0 = torch.Generator().manual_seed(seed)
        vocab = F.normalize(torch.randn(8, feature_dim, generator=g0), dim=-1)
        present = sorted({int(j) for j in (b["features"][i] @ vocab.T).argmax(1)})
        target = int((b["text"][i, 0] @ vocab.T).argmax())
        w.add({"xyz": b["xyz"][i].numpy(), "rgb": np.zeros((len(b["xyz"][i]), 3), np.uint8),
               "features": b["features"][i].numpy().astype(np.float16),
               "text": b["text"][i].numpy().astype(np.float16), "candidates": T.astype(np.float32),
               "label": np.int64(lab), "target_pose": T[lab].astype(np.float32)},
              {"instruction": f"grasp the {names[target]}", "task": "grasp", "episode": i, "step": 0,
               "scene_objects": [names[j] for j in present], "target": names[target]})
    w.flush()
