# SPDX-License-Identifier: Apache-2.0
"""The policy: a trained two-stage alignment model + action priors -> one grasp or place decision.

``Policy.load(checkpoint_dir)`` reads ``config.json`` (the ``PolicyConfig`` plus the calibrated
target-not-found threshold) and ``model.safetensors``; ``Policy.decide(cloud, instruction,
text_encoder)`` computes the candidates from the cloud with the priors (no simulator ground truth),
scores them with the model and returns a :class:`Decision`.

Target not found: the 1-Align relevance of the instruction to the cloud is summarised by
``presence`` = mean of the top-``PRESENCE_TOPK`` relevance logits (two-stage models) or of the top
CLIP cosine similarities between the sentence embedding and the point features (BASE). When it is
below the threshold calibrated at training time (``train.calibrate_presence``: balanced accuracy on
held-out true instructions vs instructions naming an object that is not in the scene), the decision's
outcome is ``target_not_found`` and no pose is returned.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_policy.configuration import PolicyConfig
from vla_policy.data import collate, select_points
from vla_policy.model import PolicyModel
from vla_policy.priors import PriorConfig, grasp_set, place_candidates

PRESENCE_TOPK = 8
MAX_INSTRUCTION_CHARS = 200
CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"


class InstructionError(ValueError):
    """The instruction is empty, too long or not text; the message says what to change."""


def check_instruction(text: Any, max_chars: int = MAX_INSTRUCTION_CHARS) -> str:
    """Return the stripped instruction or raise :class:`InstructionError` naming the problem and fix."""
    if not isinstance(text, str):
        raise InstructionError(f"instruction must be a string, got {type(text).__name__}")
    s = " ".join(text.split())
    if not s:
        raise InstructionError("instruction is empty; send a sentence such as 'grasp the red cube'")
    if len(s) > max_chars:
        raise InstructionError(
            f"instruction has {len(s)} characters, more than the limit of {max_chars}; shorten it"
        )
    return s


def encode_instruction(text_encoder: Any, instruction: str) -> np.ndarray:
    """(T, D) float32: row 0 the pooled sentence embedding, then the real word tokens (L2-normalised).

    ``text_encoder`` is a ``vla_perception.clip_features.ClipFeatureExtractor`` (``.text`` and,
    where available, ``.text_tokens``).
    """
    sent = text_encoder.text([instruction])  # (1, D)
    rows = [sent[0]]
    if hasattr(text_encoder, "text_tokens"):
        toks, mask = text_encoder.text_tokens([instruction])  # (1, L, D), (1, L)
        t = toks[0][mask[0]]
        rows.extend(torch.nn.functional.normalize(t, dim=-1))
    return torch.stack(rows).float().cpu().numpy()


def clip_weights_sha256(model: str) -> str | None:
    """SHA-256 of a CLIP's weight file (``compact`` or a directory), or None for named open_clip models.

    Stored with datasets and checkpoints: a policy only works with the CLIP whose feature space it
    was trained in, so loaders compare it and warn on a mismatch.
    """
    import hashlib

    if model == "compact":
        from vla_perception.clip_features import COMPACT_DIR

        directory = COMPACT_DIR
    else:
        directory = Path(model)
    if not directory.is_dir():
        return None
    names = ("model.safetensors", "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.pt")
    for name in names:
        f = directory / name
        if f.is_file():
            return hashlib.sha256(f.read_bytes()).hexdigest()
    return None


@dataclass
class Decision:
    """One policy decision.

    Attributes:
        outcome: ``ok``, ``target_not_found`` or ``no_candidates``.
        kind: ``grasp`` or ``place``.
        pose: (4, 4) chosen T_world_tool, or None unless ``outcome == "ok"``.
        candidates: (C, 4, 4) all candidates that were scored (ranked by the prior).
        scores: (C,) softmax probabilities of the candidates.
        index: index of the chosen candidate (-1 when none).
        relevance: ``presence``, ``threshold``, ``max``, ``mean`` of the relevance statistic.
        timings_ms: per-stage timings.
    """

    outcome: str
    kind: str
    pose: np.ndarray | None
    candidates: np.ndarray
    scores: np.ndarray
    index: int
    relevance: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Policy:
    """Trained model + priors. Build with :meth:`load`, or directly from a model and config."""

    def __init__(self, model: PolicyModel, meta: dict[str, Any] | None = None,
                 prior_cfg: PriorConfig | None = None, seed: int = 0) -> None:
        self.model = model.eval()
        self.cfg: PolicyConfig = model.cfg
        self.meta = dict(meta or {})
        self.prior_cfg = prior_cfg or PriorConfig()
        self.seed = seed

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (fp16 weights) into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"policy": self.cfg.to_dict(), "meta": self.meta},
                                                          indent=2))
        return directory

    @classmethod
    def load(cls, checkpoint: str | Path) -> Policy:
        """Load a checkpoint directory, or a shipped variant name (``SR``, ``SR+PosA``...)."""
        from safetensors.torch import load_file

        path = Path(checkpoint)
        if not path.exists() and (CHECKPOINT_DIR / str(checkpoint)).is_dir():
            path = CHECKPOINT_DIR / str(checkpoint)
        cfg_file = path / "config.json"
        if not cfg_file.is_file() or not (path / "model.safetensors").is_file():
            shipped = sorted(p.name for p in CHECKPOINT_DIR.glob("*") if (p / "config.json").exists())
            raise FileNotFoundError(
                f"{path} is not a policy checkpoint (needs config.json + model.safetensors); "
                f"train one with `vla train`, or pass a shipped variant: {shipped}"
            )
        blob = json.loads(cfg_file.read_text())
        cfg = PolicyConfig.from_dict(blob["policy"])
        model = PolicyModel(cfg)
        raw = load_file(str(path / "model.safetensors"))
        state = {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}
        model.load_state_dict(state)
        return cls(model, blob.get("meta", {}))

    # ------------------------------------------------------------------ inference
    def presence_stat(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> np.ndarray:
        """(B,) presence statistic (see the module docstring)."""
        if self.cfg.two_stage:
            r = out["relevance"]
        else:
            sent = torch.nn.functional.normalize(batch["text"][:, 0], dim=-1)
            f = torch.nn.functional.normalize(batch["features"], dim=-1)
            r = torch.einsum("bnd,bd->bn", f, sent).masked_fill(~batch["point_mask"], float("-inf"))
        k = min(PRESENCE_TOPK, r.shape[1])
        return r.topk(k, dim=1).values.mean(1).detach().cpu().numpy()

    @torch.no_grad()
    def decide(self, cloud: Any, instruction: str, text_encoder: Any = None, kind: str = "grasp",
               text_features: np.ndarray | None = None, exclude: list[tuple[np.ndarray, float]] | None = None
               ) -> Decision:
        """Choose a grasp (or place) pose for ``instruction`` in ``cloud``.

        Args:
            cloud: a ``FeatureCloud`` (``xyz`` (N,3), ``features`` (N,D)).
            instruction: the user's sentence (checked with :func:`check_instruction`).
            text_encoder: CLIP extractor for the instruction (or pass ``text_features``).
            kind: ``grasp`` or ``place``.
            text_features: (T, D) pre-computed instruction tokens (row 0 = sentence embedding).
            exclude: (centre xyz (3,), radius m) regions whose candidates are skipped (failed tries).

        Returns:
            the :class:`Decision`.
        """
        if kind not in ("grasp", "place"):
            raise ValueError(f"kind must be 'grasp' or 'place', got {kind!r}")
        instruction = check_instruction(instruction)
        t0 = time.perf_counter()
        xyz = np.asarray(cloud.xyz, dtype=np.float32)
        feats = np.asarray(cloud.features, dtype=np.float32)
        if len(xyz) == 0 or feats.shape[0] != len(xyz):
            raise ValueError(f"cloud needs N>0 points with one feature each; got xyz {xyz.shape}, "
                             f"features {feats.shape}")
        if feats.shape[1] != self.cfg.feature_dim:
            raise ValueError(f"cloud features have width {feats.shape[1]} but the policy was trained on "
                             f"{self.cfg.feature_dim}; use the same CLIP model as at training time")
        if kind == "grasp":
            cands = grasp_set(xyz, self.prior_cfg, seed=self.seed).poses
        else:
            cands = place_candidates(xyz, self.prior_cfg)
        if exclude and len(cands):
            keep = np.ones(len(cands), dtype=bool)
            for centre, radius in exclude:
                keep &= np.linalg.norm(cands[:, :3, 3] - np.asarray(centre)[None], axis=1) > radius
            cands = cands[keep]
        cands = cands[: self.cfg.max_candidates]
        t1 = time.perf_counter()
        if text_features is None:
            if text_encoder is None:
                raise ValueError("decide() needs a text_encoder (ClipFeatureExtractor) or text_features")
            text_features = encode_instruction(text_encoder, instruction)
        t2 = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        idx = select_points(xyz, self.cfg.num_points, rng)
        dummy = np.eye(4, dtype=np.float32)[None] if len(cands) == 0 else cands
        rgb = getattr(cloud, "rgb", None)
        sample = {"xyz": xyz[idx], "features": feats[idx], "text": text_features,
                  "rgb": None if rgb is None else np.asarray(rgb)[idx],
                  "candidates": dummy, "label": 0, "target_pose": np.eye(4)}
        batch = collate([sample], self.cfg.num_points, self.cfg.max_candidates)
        out = self.model(batch)
        presence = float(self.presence_stat(out, batch)[0])
        t3 = time.perf_counter()
        threshold = self.meta.get("presence_threshold")
        r = out["relevance"][0][batch["point_mask"][0]]
        rel = {"presence": presence, "threshold": threshold, "max": float(r.max()), "mean": float(r.mean())}
        timings = {"priors": 1e3 * (t1 - t0), "text": 1e3 * (t2 - t1), "model": 1e3 * (t3 - t2),
                   "total": 1e3 * (t3 - t0)}
        if len(cands) == 0:
            return Decision("no_candidates", kind, None, cands, np.zeros(0), -1, rel, timings)
        probs = torch.softmax(out["logits"][0, : len(cands)], -1).cpu().numpy()
        if threshold is not None and presence < float(threshold):
            return Decision("target_not_found", kind, None, cands, probs, -1, rel, timings)
        i = int(np.argmax(probs))
        return Decision("ok", kind, cands[i].copy(), cands, probs, i, rel, timings)
