# SPDX-License-Identifier: Apache-2.0
"""The policy: a trained two-stage alignment model + action priors -> one grasp or place decision.

``Policy.load(checkpoint_dir)`` reads ``config.json`` (the ``PolicyConfig`` plus the calibrated
target-not-found threshold) and ``model.safetensors``; ``Policy.decide(cloud, instruction,
text_encoder)`` computes the candidates from the cloud with the priors (no simulator ground truth),
scores them with the model and returns a :class:`Decision`.

Target not found. Two presence statistics exist; ``meta["presence_statistic"]`` names the one a
checkpoint was calibrated for:

* ``recogniser`` (:class:`PresenceRecogniser`, shipped checkpoints): the instruction's object
  phrase is mapped, by text alone, to the known objects of the robot's vocabulary it describes
  (:func:`instruction_referents`: a name, "a {category}", "the {colour} {shape} object",
  "something to {function}"). Every object point of the cloud gets a local descriptor (CLIP feature,
  colour and geometry pooled within each of ``PRESENCE_RADII_M``) and three linear heads (colour, shape,
  category), fitted at calibration time on training clouds, give ``p(object | point)`` over the
  vocabulary as the normalised product of its colour, shape and category probabilities (so new
  combinations of known attributes - the unseen objects - are covered). ``presence`` = mean of the
  top-``PRESENCE_RECOGNISER_TOPK`` values of ``p(referents | point)``. The compact CLIP alone ranks
  object names poorly (a present object of the same colour wins); the heads add shape evidence
  from the point geometry and learn which CLIP directions separate categories.
  An instruction whose object phrase the vocabulary cannot ground ("the purple elephant", another
  language, no object at all) is refused before any of this, as ``not_understood`` with the reason
  (:meth:`Policy.understand`); the sentence is parsed by :mod:`vla_common.language` and the text
  tower reads the stage's canonical wording.
* ``relevance`` (older checkpoints, the fallback when the meta has no recogniser): the mean of the
  top-``PRESENCE_TOPK`` 1-Align relevance logits (two-stage models) or CLIP cosine similarities of the
  sentence embedding (BASE).

Object-level grounding (``meta["grounding_object"]``, with ``grounding_weight`` > 0; on in the
shipped checkpoints): before any grasp candidate is made, :func:`target_region` picks the one
object the recogniser's map points at (the map's points grouped into objects, each scored by its
best points, then grown over the cloud along colour-continuous surface) and ``priors.grasp_set``
seeks every candidate on it (``focus``); the model then chooses among those. Only when nothing on
that object can be grasped (or every pose on it has failed) are the whole scene's candidates
re-weighted point by point (``reground``). Per-point re-weighting alone let a same-colour
neighbour's best point win; on 60 development scenes the chosen grasp lay on the instructed
object in 0.60 of the cases, with object-level grounding 0.85 (``results/RESULTS.md``).

When ``presence`` is below ``meta["presence_threshold"]`` (calibrated by ``train.calibrate_presence``
on true instructions vs instructions describing nothing in the scene; None = disabled), the
decision's outcome is ``target_not_found`` and no pose is returned.
"""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_common.language import NotUnderstood, ParsedInstruction, parse_instruction, phrase_referents
from vla_policy.configuration import PolicyConfig
from vla_policy.data import collate, select_points
from vla_policy.model import PolicyModel
from vla_policy.priors import (
    PriorConfig,
    below_carry_height,
    container_drop_pose,
    grasp_set,
    place_candidates,
    relation_mask,
    support_plane,
)
from vla_policy.trainer import TrainerConfig, fit

PRESENCE_TOPK = 8
PRESENCE_POINTS = 1536  # clouds are sub-sampled like the training shards (collect.STORE_POINTS)
PRESENCE_RADII_M = (0.03, 0.06)  # neighbourhoods of a point's pooled descriptor (part, whole object)
PRESENCE_MIN_HEIGHT_M = 0.008  # object points: above the support plane by this (as select_points)
PRESENCE_RECOGNISER_TOPK = 20
GROUNDING_RADIUS_M = 0.03  # a grasp candidate's grounding: best p(referents | point) within this
MLP_BATCH = 4096  # points per step when the recogniser has a hidden layer
GROUNDING_FLOOR = 1e-3  # added before the power, so a candidate off every described object keeps a chance
MAX_INSTRUCTION_CHARS = 200
OBJECT_LINK_M = 0.015  # object points closer than this belong to one object (object_components)
OBJECT_SMOOTH_M = 0.02  # per-point probabilities are averaged within this before objects are scored
OBJECT_TOPK = 10  # an object's score: mean of its best smoothed probabilities
OBJECT_COLOUR_STEP = 0.12  # largest colour change (RGB 0..1) along a link within one object
OBJECT_GROW_LINK_M = 0.008  # the described object is grown over cloud points closer than this ...
OBJECT_MAX_RADIUS_M = 0.15  # ... and at most this far from its best point
FOCUS_EXCLUDE_M = 0.01  # on the described object, poses this close to a failed one are skipped
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
    controls = sorted({f"U+{ord(c):04X}" for c in s if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co")})
    if controls:  # terminal escapes, NULs, bidi overrides: never part of a sentence, refuse them
        raise InstructionError(f"instruction contains control or format characters "
                               f"({', '.join(controls[:5])}); send plain text")
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


# ---------------------------------------------------------------------- target presence (recogniser)
def top_mean(p: np.ndarray, topk: int = PRESENCE_RECOGNISER_TOPK) -> float:
    """The recogniser's presence: mean of the ``topk`` largest p(referents | point) (0.0 when empty)."""
    return float(np.sort(p)[-min(topk, len(p)):].mean()) if len(p) else 0.0


def reground(probs: np.ndarray, grounding: np.ndarray, weight: float) -> np.ndarray:
    """Candidate probabilities (C,) re-weighted by the recogniser: ``p * (g + floor)^weight``, normalised.

    ``g`` (C,) from :func:`grounding_scores`; ``weight`` 0 leaves ``p`` unchanged.
    """
    w = np.asarray(probs, dtype=np.float64) * (np.asarray(grounding) + GROUNDING_FLOOR) ** float(weight)
    total = w.sum()
    return w / total if total > 0 else np.asarray(probs, dtype=np.float64)


def grounding_scores(cand_xyz: np.ndarray, points: np.ndarray, probs: np.ndarray,
                     radius_m: float = GROUNDING_RADIUS_M) -> np.ndarray:
    """Grounding of each candidate by the recogniser's point map.

    Returns (C,): the highest p(referents | point) of the object points within ``radius_m`` of each
    candidate position (C, 3); 0 where none is that close.
    """
    if len(points) == 0 or len(cand_xyz) == 0:
        return np.zeros(len(cand_xyz))
    from scipy.spatial import cKDTree

    near = cKDTree(points).query_ball_point(np.asarray(cand_xyz, dtype=np.float64), radius_m)
    return np.array([float(probs[js].max()) if js else 0.0 for js in near])


def reference_box(points: np.ndarray, probs: np.ndarray, min_prob: float = 0.2,
                  radius_m: float = 0.30, link_m: float = 0.025) -> tuple[np.ndarray, np.ndarray] | None:
    """World AABB (min (3,), max (3,)) of the reference object the recogniser found, or None.

    The object is grown from its most probable point by hysteresis, as an edge detector grows an
    edge: points within ``link_m`` of the region whose p(referent | point) is at least a quarter of
    the best value join it, never further than ``radius_m`` (horizontally) from the seed (0.30 m:
    the diagonal of the largest object, 0.2 m a side). So a tray or a basket is taken whole,
    however far its best point lies from its other side, and a same-colour object that does not
    touch it stays out. None when the best value is below
    ``min_prob`` (the reference is not convincingly in view).

    Args:
        points: (M, 3) object points, m.
        probs: (M,) p(referent | point).
        min_prob: the least best value that counts as found.
        radius_m: the farthest a point of the object may lie from its best point (horizontally), m.
        link_m: the largest gap between two points of one object, m.
    """
    if len(points) == 0:
        return None
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    k = int(np.argmax(probs))
    if probs[k] < min_prob:
        return None
    near = np.linalg.norm(points[:, :2] - points[k, :2], axis=1) <= radius_m
    cand = np.flatnonzero(near & (probs >= 0.25 * probs[k]))  # (K,) may join the object
    inside = grow_region(cKDTree(points[cand]), [int(np.flatnonzero(cand == k)[0])], link_m)
    sel = points[cand[inside]]
    return sel.min(0), sel.max(0)


def grow_region(tree: Any, seeds: list[int], link_m: float, colours: np.ndarray | None = None,
                max_colour_step: float = np.inf) -> np.ndarray:
    """(K,) bool: the points of ``tree`` (a cKDTree over K points) reachable from ``seeds``.

    Breadth-first growth over links shorter than ``link_m``; with ``colours`` (K, 3) a link counts
    only where the colour changes by at most ``max_colour_step`` (Euclidean) along it. Used by
    :func:`reference_box` (a place reference) and :func:`target_region` (the object to grasp).
    """
    inside = np.zeros(tree.n, dtype=bool)
    frontier = sorted({int(i) for i in seeds})
    inside[frontier] = True
    while frontier:
        nxt: list[int] = []
        for i, js in zip(frontier, tree.query_ball_point(tree.data[frontier], link_m)):
            js = np.asarray(js, dtype=np.int64)
            js = js[~inside[js]]
            if colours is not None:
                js = js[np.linalg.norm(colours[js] - colours[i], axis=1) <= max_colour_step]
            inside[js] = True
            nxt.extend(js.tolist())
        frontier = nxt
    return inside


def drop_excluded(cands: np.ndarray, exclude: list[tuple[np.ndarray, float]] | None) -> np.ndarray:
    """Candidates (C, 4, 4) whose position lies outside every (centre (3,), radius m) of ``exclude``."""
    if not exclude or len(cands) == 0:
        return cands
    keep = np.ones(len(cands), dtype=bool)
    for centre, radius in exclude:
        keep &= np.linalg.norm(cands[:, :3, 3] - np.asarray(centre)[None], axis=1) > radius
    return cands[keep]


def object_components(points: np.ndarray, link_m: float = OBJECT_LINK_M) -> np.ndarray:
    """(M,) component label of each object point: points closer than ``link_m`` share an object.

    A geometric over-segmentation of the object points (above the support plane) into the
    separate things on the table; objects that touch share a component.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(points)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(np.asarray(points, dtype=np.float64)).query_pairs(link_m, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def target_region(points: np.ndarray, probs: np.ndarray, xyz: np.ndarray | None = None,
                  rgb: np.ndarray | None = None, topk: int = OBJECT_TOPK, smooth_m: float = OBJECT_SMOOTH_M,
                  link_m: float = OBJECT_LINK_M) -> np.ndarray:
    """(R, 3) points of the one object the recogniser's map says is described.

    Object-level grounding: per-point probabilities are noisy (a point of a same-colour object
    often scores as high as the described object's), while an object's best points together are
    not. So the map's points are grouped into objects (:func:`object_components`), each is scored
    by the sum of its ``topk`` best neighbourhood-smoothed ``p(referents | point)`` (smoothed within
    ``smooth_m``) over ``topk`` (a fragment of fewer points scores less), and the best one wins.
    Touching objects share a component, so, given the full
    cloud (``xyz``, ``rgb``), the object is then grown over the cloud's object points from the
    winner's ``topk`` best points, across links shorter than ``OBJECT_GROW_LINK_M`` whose colour
    changes by at most ``OBJECT_COLOUR_STEP`` (an object's surface is one colour with soft shading;
    the border to a touching object is a step), at most ``OBJECT_MAX_RADIUS_M`` from the best one.
    Without the cloud the winning component is returned.

    Args:
        points: (M, 3) the map's object points, m (a sub-sample of the cloud).
        probs: (M,) p(referents | point).
        xyz: (N, 3) the full cloud, m, or None.
        rgb: (N, 3) uint8 colours of ``xyz``, or None.
        topk: an object's score is the mean of its ``topk`` best smoothed values.
        smooth_m: radius of the smoothing, m.
        link_m: object points closer than this share a component, m.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return np.zeros((0, 3))
    a, n = _neighbourhoods(cKDTree(points), points, smooth_m)
    smooth = (a @ np.asarray(probs, dtype=np.float64)) / n  # (M,)
    comp = object_components(points, link_m)
    best, best_score = -1, -1.0
    for c in np.unique(comp):
        # the sum of its topk best values over topk: a fragment of a few points (an isolated
        # confident point) cannot outscore an object seen whole
        score = float(np.sort(smooth[comp == c])[::-1][:topk].sum()) / topk
        if score > best_score:
            best, best_score = int(c), score
    members = np.flatnonzero(comp == best)
    if xyz is None or rgb is None:
        return points[members]
    xyz = np.asarray(xyz, dtype=np.float64)
    nrm, d = support_plane(xyz)
    # seeds: the object's best points (those that gave it its score); one seed alone may sit on a
    # rim or a shading edge whose neighbours all differ in colour, and grow nothing
    top = members[np.argsort(-smooth[members])[:topk]]
    seed_xyz = points[top[0]]
    obj = np.flatnonzero((xyz @ nrm + d > PRESENCE_MIN_HEIGHT_M)
                         & (np.linalg.norm(xyz - seed_xyz, axis=1) <= OBJECT_MAX_RADIUS_M))
    if len(obj) == 0:
        return points[members]
    p = xyz[obj]
    tree = cKDTree(p)
    col = np.asarray(rgb, dtype=np.float64)[obj] / 255.0  # (K, 3)
    inside = grow_region(tree, tree.query(points[top])[1].tolist(), OBJECT_GROW_LINK_M, col,
                         OBJECT_COLOUR_STEP)
    return p[inside]


def instruction_referents(text: str, vocabulary: list[dict[str, str]], kind: str = "grasp") -> list[int]:
    """Indices of the vocabulary objects the instruction's ``kind`` stage describes ([] if none).

    The object phrase (grasp) or the reference phrase (place) comes from
    :func:`vla_common.language.parse_instruction`; see :func:`vla_common.language.phrase_referents`.
    """
    try:
        phrase = parse_instruction(text).phrase(kind)
    except NotUnderstood:
        return []
    return phrase_referents(phrase, vocabulary)[0] if phrase else []


def presence_descriptors(xyz: np.ndarray, rgb: np.ndarray | None, features: np.ndarray,
                         radii_m: tuple[float, ...] = PRESENCE_RADII_M,
                         plane: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Local descriptors of the object points (above the support plane) of a cloud.

    Per object point and radius, over the object points within it: the normalised mean CLIP feature
    (D), mean and std of the colour (3 + 3, in 0..1), the point's height, the highest height, the log
    neighbour count and the square roots of the position covariance's eigenvalues (ascending, 3);
    the blocks of the radii are concatenated (the 6 cm block sees most of an object's extent).

    Args:
        xyz: (N, 3) cloud points, m.
        rgb: (N, 3) uint8 colours, or None (read as zeros).
        features: (N, D) fused CLIP features.
        radii_m: neighbourhood radii, m.
        plane: the support plane (unit normal (3,), offset) when known from the full cloud; None fits
            it to ``xyz``. An object-biased sub-sample holds few table points, and RANSAC may then
            take the top of a book or tray for the table, which hides that object.

    Returns:
        (indices (M,) of the object points in the input, descriptors (M, len(radii_m) * (D + 12)) float32).
    """
    from scipy.spatial import cKDTree

    from vla_policy.priors import support_plane

    xyz = np.asarray(xyz, dtype=np.float64)
    nrm, d = support_plane(xyz) if plane is None else plane
    h = xyz @ nrm + d  # (N,)
    idx = np.flatnonzero(h > PRESENCE_MIN_HEIGHT_M)
    block = features.shape[1] + 12
    dim = len(radii_m) * block
    if len(idx) == 0:
        return idx, np.zeros((0, dim), np.float32)
    p, h = xyz[idx], h[idx]
    f = np.asarray(features, dtype=np.float32)[idx]
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-6)  # (M, D)
    col = np.zeros((len(idx), 3), np.float32)
    if rgb is not None:
        col = np.asarray(rgb)[idx].astype(np.float32) / 255.0  # (M, 3)
    out = np.zeros((len(idx), dim), np.float32)
    tree = cKDTree(p)
    pp = (p[:, :, None] * p[:, None, :]).reshape(-1, 9)  # (M, 9) second moments of the positions
    for k, radius in enumerate(radii_m):
        # neighbourhood sums as one sparse (M, M) matrix product instead of a loop over the points
        # (same values to ~1e-6; 30-40x faster on a 1536-point cloud)
        a, n = _neighbourhoods(tree, p, radius)
        nn = n[:, None]
        g = (a @ f.astype(np.float64)) / nn  # (M, D)
        g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-6)
        cm = a @ col.astype(np.float64) / nn  # (M, 3)
        cs = np.sqrt(np.maximum(a @ col.astype(np.float64) ** 2 / nn - cm ** 2, 0.0))
        hmax = np.maximum.reduceat(h[a.indices], a.indptr[:-1])  # every row holds the point itself
        pm = a @ p / nn
        cov = (a @ pp / nn).reshape(-1, 3, 3) - pm[:, :, None] * pm[:, None, :]
        ev = np.sqrt(np.maximum(np.linalg.eigvalsh(cov), 0.0))  # (M, 3) ascending
        out[:, k * block:(k + 1) * block] = np.concatenate(
            [g, cm, cs, h[:, None], hmax[:, None], np.log(n)[:, None], ev], 1)
    return idx, out


def _neighbourhoods(tree: Any, p: np.ndarray, radius: float) -> tuple[Any, np.ndarray]:
    """(M, M) CSR 0/1 matrix of the points within ``radius`` of each point (itself included), counts (M,).

    Built from ``query_pairs`` (flat index arrays, the same ``<= radius`` test as
    ``query_ball_point``): the same matrix as from the per-point lists, without the Python loop
    over ~10^5 neighbours that made it the slowest part of a grasp decision.
    """
    import scipy.sparse

    m = len(p)
    pairs = tree.query_pairs(radius, output_type="ndarray")  # (K, 2), i < j
    diag = np.arange(m)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], diag])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], diag])
    a = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(m, m))
    a.sort_indices()
    return a, np.diff(a.indptr).astype(np.float64)


# the blocks of one radius of a presence descriptor (see presence_descriptors), by what they measure
DESCRIPTOR_GROUPS = ("clip", "colour", "geometry")


def descriptor_columns(groups: list[str], width: int, n_radii: int = len(PRESENCE_RADII_M)) -> np.ndarray:
    """Column indices of the descriptor groups in a descriptor of ``width`` columns.

    Per radius: the mean CLIP feature (D), the colour mean and std (6), then height, highest
    height, log count and the three position-spread values (6) = ``geometry``.
    """
    block = width // n_radii
    dim = block - 12
    if block * n_radii != width or dim <= 0:
        raise ValueError(f"a descriptor of {width} columns is not {n_radii} blocks of D + 12")
    spans = {"clip": (0, dim), "colour": (dim, dim + 6), "geometry": (dim + 6, dim + 12)}
    return np.concatenate([np.arange(k * block + spans[g][0], k * block + spans[g][1])
                           for k in range(n_radii) for g in DESCRIPTOR_GROUPS if g in groups])


class PresenceRecogniser:
    """Linear colour / shape / category heads over :func:`presence_descriptors` -> p(object | point).

    ``heads[a] = (W (K_a, F), b (K_a,), classes)`` with the descriptor standardisation folded in.
    ``p(o | point)`` over the vocabulary = the normalised product of the heads' probabilities of the
    object's colour, shape and category.

    ``known``: the vocabulary objects the heads saw labelled points of. An instruction describing
    any other object cannot be judged (:meth:`judges`): the heads have never seen what it looks like
    (on the unseen benchmark split they refused 8 of 20 present targets), so the policy never
    refuses it, and locates it by the :attr:`attributes` recogniser when there is one
    (:meth:`referent_probs`). None = every object counts as known.

    Factorised form (``inputs`` + ``trunks``): each attribute reads only its own descriptor groups
    (:data:`DESCRIPTOR_GROUPS`) through a hidden layer of its own; the shipped attribute recogniser
    reads colour from the colour statistics and shape and category from the geometry.
    """

    ATTRS = ("colour", "shape", "category")

    def __init__(self, vocabulary: list[dict[str, str]],
                 heads: dict[str, tuple[np.ndarray, np.ndarray, list[str]]],
                 known: list[str] | None = None,
                 trunk: tuple[np.ndarray, np.ndarray] | None = None,
                 inputs: dict[str, list[str]] | None = None,
                 trunks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.vocabulary = list(vocabulary)
        self.heads = heads
        self.known = None if known is None else sorted(set(known))
        self.trunk = trunk  # optional hidden layer (W (H, F), b (H,)), ReLU; heads then read (H,)
        # factorised form: each attribute reads only its descriptor groups (``inputs[a]``, see
        # DESCRIPTOR_GROUPS) through a hidden layer of its own (``trunks[a]`` = W (H, F_a), b (H,))
        if inputs is not None and (trunk is not None or set(inputs) != set(self.ATTRS)):
            raise ValueError(f"per-attribute inputs need one entry per attribute {self.ATTRS} and no shared "
                             f"hidden layer; got {sorted(inputs)}")
        for groups in (inputs or {}).values():
            if not groups or set(groups) - set(DESCRIPTOR_GROUPS):
                raise ValueError(f"descriptor groups must be a non-empty subset of {DESCRIPTOR_GROUPS}, "
                                 f"got {groups}")
        if inputs is not None and set(trunks or {}) != set(self.ATTRS):
            raise ValueError(f"per-attribute inputs need a hidden layer per attribute {self.ATTRS}")
        self.inputs = None if inputs is None else {a: list(inputs[a]) for a in self.ATTRS}
        self.trunks = trunks
        # the recogniser of objects this one does not know (:meth:`referent_probs`), or None
        self.attributes: PresenceRecogniser | None = None
        self._cols = {a: np.array([heads[a][2].index(v[a]) for v in self.vocabulary]) for a in self.ATTRS}

    @classmethod
    def fit(cls, descriptors: np.ndarray, labels: np.ndarray, vocabulary: list[dict[str, str]],
            steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
            hidden: int = 0, inputs: dict[str, list[str]] | None = None) -> PresenceRecogniser:
        """Adam on the summed cross-entropy of the heads; ``labels`` (M,) index ``vocabulary``.

        ``hidden`` > 0 adds one shared ReLU layer of that width under the three heads (trained
        jointly, ``steps`` minibatches of ``MLP_BATCH`` points); 0 keeps the linear heads of the first
        calibration (full batch). ``inputs`` (with ``hidden`` > 0): the factorised form, each
        attribute's own hidden layer over its own descriptor groups only (e.g. shape and category
        without the colour statistics, so that a colour seen on one category in training does not
        name the category of an unseen object of that colour).
        """
        x = torch.as_tensor(descriptors, dtype=torch.float32)  # (M, F)
        known = [vocabulary[int(j)]["name"] for j in np.unique(labels)]
        if inputs is not None:
            if hidden <= 0:
                raise ValueError("per-attribute inputs need hidden > 0")
            with torch.enable_grad():
                heads, trunks = cls._fit_factorised(x, labels, vocabulary, steps, lr, weight_decay, seed,
                                                    hidden, inputs)
            return cls(vocabulary, heads, known=known, inputs=inputs, trunks=trunks)
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xn = (x - mu) / sd
        with torch.enable_grad():  # callers may run under no_grad (train.calibrate_presence)
            if hidden > 0:
                trunk, heads = cls._fit_mlp(xn, mu, sd, labels, vocabulary, steps, lr, weight_decay, seed,
                                            hidden)
                return cls(vocabulary, heads, known=known, trunk=trunk)
            heads = cls._fit_heads(xn, mu, sd, labels, vocabulary, steps, lr, weight_decay, seed)
        return cls(vocabulary, heads, known=known)

    @classmethod
    def _fit_mlp(cls, xn, mu, sd, labels, vocabulary, steps, lr, weight_decay, seed, hidden, attrs=None):
        """One ReLU layer under the heads of ``attrs`` (default all), trained jointly (minibatch Adam).

        The standardisation (mu, sd) of ``xn`` is folded into the layer.
        """
        attrs = cls.ATTRS if attrs is None else attrs
        torch.manual_seed(seed)
        classes = {a: sorted({v[a] for v in vocabulary}) for a in attrs}
        ys = {a: torch.as_tensor([classes[a].index(vocabulary[int(j)][a]) for j in labels], dtype=torch.long)
              for a in attrs}
        layer = torch.nn.Linear(xn.shape[1], hidden)
        lins = {a: torch.nn.Linear(hidden, len(classes[a])) for a in attrs}
        params = list(layer.parameters()) + [p for lin in lins.values() for p in lin.parameters()]
        gen = torch.Generator().manual_seed(seed)
        batch = min(len(xn), MLP_BATCH)

        def step_loss(step: int) -> torch.Tensor:  # minibatches: a calibration set holds ~10^5-10^6 points
            sel = torch.randint(len(xn), (batch,), generator=gen)
            h = torch.relu(layer(xn[sel]))  # (B, H)
            return sum(torch.nn.functional.cross_entropy(lins[a](h), ys[a][sel]) for a in attrs)

        fit(params, step_loss, TrainerConfig(steps=steps, lr=lr, weight_decay=weight_decay, seed=seed))
        w = layer.weight.detach() / sd  # standardisation folded into the hidden layer
        b = layer.bias.detach() - w @ mu
        trunk = (w.numpy().astype(np.float64), b.numpy().astype(np.float64))
        heads = {a: (lins[a].weight.detach().numpy().astype(np.float64),
                     lins[a].bias.detach().numpy().astype(np.float64), classes[a]) for a in attrs}
        return trunk, heads

    @classmethod
    def _fit_factorised(cls, x, labels, vocabulary, steps, lr, weight_decay, seed, hidden, inputs):
        """Per attribute, :meth:`_fit_mlp` of its head alone over its descriptor columns."""
        heads, trunks = {}, {}
        for a in cls.ATTRS:
            xa = x[:, torch.as_tensor(descriptor_columns(inputs[a], x.shape[1]))]  # (M, F_a)
            mu, sd = xa.mean(0), xa.std(0) + 1e-6
            trunks[a], head = cls._fit_mlp((xa - mu) / sd, mu, sd, labels, vocabulary, steps, lr,
                                           weight_decay, seed, hidden, attrs=(a,))
            heads[a] = head[a]
        return heads, trunks

    def judges(self, referents: list[int]) -> bool:
        """Whether every referent (vocabulary index) is an object the heads were fitted on."""
        return self.known is None or all(self.vocabulary[i]["name"] in self.known for i in referents)

    @classmethod
    def _fit_heads(cls, xn, mu, sd, labels, vocabulary, steps, lr, weight_decay, seed):
        heads = {}
        for a in cls.ATTRS:
            classes = sorted({v[a] for v in vocabulary})
            y = torch.as_tensor([classes.index(vocabulary[int(j)][a]) for j in labels], dtype=torch.long)
            torch.manual_seed(seed)
            lin = torch.nn.Linear(xn.shape[1], len(classes))
            fit(lin.parameters(), lambda step, lin=lin, y=y: torch.nn.functional.cross_entropy(lin(xn), y),
                TrainerConfig(steps=steps, lr=lr, weight_decay=weight_decay, seed=seed))  # full batch
            w = lin.weight.detach() / sd  # fold the standardisation in: W (x - mu) / sd + b
            b = lin.bias.detach() - w @ mu
            heads[a] = (w.numpy().astype(np.float64), b.numpy().astype(np.float64), classes)
        return heads

    def object_probs(self, descriptors: np.ndarray) -> np.ndarray:
        """(M, V) p(vocabulary object | point) for descriptors (M, F)."""
        x = np.asarray(descriptors, dtype=np.float64)
        if self.trunk is not None:
            x = np.maximum(x @ self.trunk[0].T + self.trunk[1], 0.0)  # (M, H)
        logp = np.zeros((len(x), len(self.vocabulary)))
        for a in self.ATTRS:
            w, b, _ = self.heads[a]
            xa = x
            if self.inputs is not None:
                tw, tb = self.trunks[a]
                cols = descriptor_columns(self.inputs[a], x.shape[1])
                xa = np.maximum(x[:, cols] @ tw.T + tb, 0.0)  # (M, H)
            z = xa @ w.T + b  # (M, K_a)
            z = z - z.max(1, keepdims=True)
            lz = z - np.log(np.exp(z).sum(1, keepdims=True))
            logp += lz[:, self._cols[a]]
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(1, keepdims=True)

    def referent_probs(self, descriptors: np.ndarray, referents: list[int]) -> np.ndarray:
        """(M,) p(any of ``referents`` | point), by the heads that can judge the referents.

        These heads when they know every referent (:meth:`judges`), else the :attr:`attributes`
        recogniser when there is one. The appearance of an object the heads never saw is out of
        their distribution: in training, pink was the colour of a teddy bear (a toy) and a peach,
        and the heads took an unseen pink cup for a toy. The attribute recogniser reads colour
        from the colour statistics and shape and category from the geometry only, which carry
        over to new objects.
        """
        rec = self if self.attributes is None or self.judges(referents) else self.attributes
        return rec.object_probs(descriptors)[:, referents].sum(1)

    def presence(self, descriptors: np.ndarray, referents: list[int],
                 topk: int = PRESENCE_RECOGNISER_TOPK) -> float | None:
        """Mean of the top-``topk`` p(referents | point); None without referents, 0.0 without points."""
        if not referents:
            return None
        if len(descriptors) == 0:
            return 0.0
        return top_mean(self.object_probs(descriptors)[:, referents].sum(1), topk)  # over (M,) points

    def to_meta(self, digits: int = 5) -> dict[str, Any]:
        """JSON-able form for ``config.json`` (``meta["presence_recogniser"]``, ``digits`` significant)."""
        def r(a: np.ndarray) -> list:
            return [float(f"{x:.{digits}g}") for x in a.ravel()] if a.ndim == 1 else [r(row) for row in a]

        out = {"vocabulary": self.vocabulary, "radii_m": list(PRESENCE_RADII_M), "known": self.known,
               "heads": {a: {"classes": c, "W": r(w), "b": r(b)} for a, (w, b, c) in self.heads.items()}}
        if self.trunk is not None:
            out["trunk"] = {"W": r(self.trunk[0]), "b": r(self.trunk[1])}
        if self.inputs is not None:
            out["inputs"] = self.inputs
            out["trunks"] = {a: {"W": r(w), "b": r(b)} for a, (w, b) in self.trunks.items()}
        if self.attributes is not None:
            out["attributes"] = self.attributes.to_meta(digits)
        return out

    @classmethod
    def from_meta(cls, blob: dict[str, Any]) -> PresenceRecogniser:
        """Inverse of :meth:`to_meta`."""
        heads = {a: (np.asarray(h["W"], dtype=np.float64), np.asarray(h["b"], dtype=np.float64),
                     list(h["classes"])) for a, h in blob["heads"].items()}
        trunk = blob.get("trunk")
        if trunk is not None:
            trunk = (np.asarray(trunk["W"], dtype=np.float64), np.asarray(trunk["b"], dtype=np.float64))
        trunks = {a: (np.asarray(t["W"], dtype=np.float64), np.asarray(t["b"], dtype=np.float64))
                  for a, t in blob.get("trunks", {}).items()} or None
        rec = cls(blob["vocabulary"], heads, blob.get("known"), trunk, blob.get("inputs"), trunks)
        if blob.get("attributes"):
            rec.attributes = cls.from_meta(blob["attributes"])
        return rec

    FILE_STEM = "presence_recogniser"
    ATTRIBUTES_STEM = "attribute_recogniser"  # the :attr:`attributes` recogniser, beside it

    def save(self, directory: Path, stem: str | None = None) -> Path:
        """Write ``presence_recogniser.safetensors`` (head weights) + ``.json`` (vocabulary, classes).

        The :attr:`attributes` recogniser, when there is one, goes beside it as ``attribute_recogniser.*``.
        """
        from safetensors.numpy import save_file

        stem = stem or self.FILE_STEM
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for a, (w, b, _) in self.heads.items():
            tensors[f"{a}.W"] = np.ascontiguousarray(w, dtype=np.float32)
            tensors[f"{a}.b"] = np.ascontiguousarray(b, dtype=np.float32)
        if self.trunk is not None:
            tensors["trunk.W"] = np.ascontiguousarray(self.trunk[0], dtype=np.float32)
            tensors["trunk.b"] = np.ascontiguousarray(self.trunk[1], dtype=np.float32)
        for a, (w, b) in (self.trunks or {}).items():
            tensors[f"trunk.{a}.W"] = np.ascontiguousarray(w, dtype=np.float32)
            tensors[f"trunk.{a}.b"] = np.ascontiguousarray(b, dtype=np.float32)
        save_file(tensors, str(directory / f"{stem}.safetensors"))
        info = {"vocabulary": self.vocabulary, "radii_m": list(PRESENCE_RADII_M), "known": self.known,
                "classes": {a: c for a, (_, _, c) in self.heads.items()}}
        if self.inputs is not None:
            info["inputs"] = self.inputs
        (directory / f"{stem}.json").write_text(json.dumps(info, indent=1))
        if self.attributes is not None:
            self.attributes.save(directory, self.ATTRIBUTES_STEM)
        elif stem == self.FILE_STEM:  # no stale companion from an earlier save in this directory
            for ext in ("json", "safetensors"):
                (directory / f"{self.ATTRIBUTES_STEM}.{ext}").unlink(missing_ok=True)
        return directory

    @classmethod
    def load(cls, directory: Path, stem: str | None = None) -> PresenceRecogniser:
        """Read what :meth:`save` wrote; a missing or malformed file is a clear error."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        stem = stem or cls.FILE_STEM
        directory = Path(directory)
        files = [directory / f"{stem}.{ext}" for ext in ("json", "safetensors")]
        try:
            info = json.loads(files[0].read_text())
            tensors = load_file(str(files[1]))
            heads = {a: (tensors[f"{a}.W"].astype(np.float64), tensors[f"{a}.b"].astype(np.float64),
                         list(info["classes"][a])) for a in cls.ATTRS}
            trunk = None
            if "trunk.W" in tensors:
                trunk = (tensors["trunk.W"].astype(np.float64), tensors["trunk.b"].astype(np.float64))
            inputs, trunks = info.get("inputs"), None
            if inputs is not None:
                trunks = {a: (tensors[f"trunk.{a}.W"].astype(np.float64),
                              tensors[f"trunk.{a}.b"].astype(np.float64)) for a in cls.ATTRS}
            rec = cls(info["vocabulary"], heads, info.get("known"), trunk, inputs, trunks)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise ValueError(f"cannot load the presence recogniser from {directory} "
                             f"({files[0].name} + {files[1].name}): {exc}") from exc
        if trunk is not None and (trunk[1].shape != (trunk[0].shape[0],) or any(
                w.shape[1] != trunk[0].shape[0] for w, _, _ in heads.values())):
            raise ValueError(f"presence recogniser in {directory}: hidden layer W {trunk[0].shape}, "
                             f"b {trunk[1].shape} does not match the heads")
        for a, (tw, tb) in (trunks or {}).items():
            if tb.shape != (tw.shape[0],) or heads[a][0].shape[1] != tw.shape[0]:
                raise ValueError(f"presence recogniser in {directory}: hidden layer of {a!r} W {tw.shape}, "
                                 f"b {tb.shape} does not match its head {heads[a][0].shape}")
        if stem == cls.FILE_STEM and (directory / f"{cls.ATTRIBUTES_STEM}.json").exists():
            rec.attributes = cls.load(directory, cls.ATTRIBUTES_STEM)
        for a, (w, b, c) in heads.items():
            if w.shape != (len(c), w.shape[1]) or b.shape != (len(c),):
                raise ValueError(f"presence recogniser in {directory}: head {a!r} has W {w.shape}, "
                                 f"b {b.shape} for {len(c)} classes")
        return rec


@dataclass
class Decision:
    """One policy decision.

    Attributes:
        outcome: ``ok``, ``target_not_found``, ``no_candidates`` or ``not_understood`` (the
            instruction names nothing the policy can ground; ``reason`` says why).
        kind: ``grasp`` or ``place``.
        pose: (4, 4) chosen T_world_tool, or None unless ``outcome == "ok"``.
        candidates: (C, 4, 4) all candidates that were scored (ranked by the prior).
        scores: (C,) softmax probabilities of the candidates.
        index: index of the chosen candidate (-1 when none).
        relevance: ``presence`` (the checkpoint's presence statistic; None when it cannot judge),
            ``threshold``, ``max`` / ``mean`` of the 1-Align relevance and ``relevance_topk``.
        timings_ms: per-stage timings, ms: ``priors`` (candidates; for a grasp also the recogniser's
            map and the object-level grounding that come before them), ``text``, ``model``,
            ``presence``, ``total``.
        reason: why there is no pose, in words for the user ("" when ``outcome == "ok"``).
        text: the canonical stage text the text tower read ("pick up the red mug").
    """

    outcome: str
    kind: str
    pose: np.ndarray | None
    candidates: np.ndarray
    scores: np.ndarray
    index: int
    relevance: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    text: str = ""


class Policy:
    """Trained model + priors. Build with :meth:`load`, or directly from a model and config."""

    def __init__(self, model: PolicyModel, meta: dict[str, Any] | None = None,
                 prior_cfg: PriorConfig | None = None, seed: int = 0) -> None:
        self.model = model.eval()
        self.cfg: PolicyConfig = model.cfg
        self.meta = dict(meta or {})
        self.prior_cfg = prior_cfg or PriorConfig()
        self.seed = seed
        self._recogniser: tuple[int, PresenceRecogniser] | None = None
        self.directory: Path | None = None  # the checkpoint directory this policy was loaded from

    @property
    def recogniser(self) -> PresenceRecogniser | None:
        """The calibrated :class:`PresenceRecogniser` of ``meta["presence_recogniser"]``, or None.

        The meta holds either the recogniser itself (``to_meta`` form, as calibration returns it)
        or a directory, relative to the checkpoint's, with the files of
        :meth:`PresenceRecogniser.save` (the shipped checkpoints share ``checkpoints/presence``).
        """
        blob = self.meta.get("presence_recogniser")
        if not blob:
            return None
        if self._recogniser is None or self._recogniser[0] != id(blob):
            if isinstance(blob, str):
                base = self.directory if self.directory is not None else Path.cwd()
                rec = PresenceRecogniser.load((base / blob).resolve())
            else:
                rec = PresenceRecogniser.from_meta(blob)
            self._recogniser = (id(blob), rec)
        return self._recogniser[1]

    @property
    def vocabulary(self) -> list[dict[str, str]] | None:
        """The grounding vocabulary stored with the checkpoint (the recogniser's), or None."""
        rec = self.recogniser
        return rec.vocabulary if rec is not None else self.meta.get("vocabulary")

    def understand(self, instruction: str) -> ParsedInstruction:
        """Parse an instruction and check that every object it names can be grounded.

        Raises:
            NotUnderstood: with a reason the user can act on ("I don't know what 'purple
                elephant' is: 'elephant' is not in my vocabulary"). A checkpoint without a grounding
                vocabulary (older ones) checks the sentence structure only.
        """
        parsed = parse_instruction(check_instruction(instruction))
        vocab = self.vocabulary
        if vocab:
            for kind, _ in parsed.stages():
                refs, why = phrase_referents(parsed.phrase(kind) or "", vocab)
                if not refs:
                    raise NotUnderstood(why)
        return parsed

    def referent_map(self, xyz: np.ndarray, rgb: np.ndarray | None, features: np.ndarray,
                     instruction: str, kind: str = "grasp", seed: int | None = None,
                     judged_only: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """Where the instruction's object is, by the recogniser: object points, p(referents | point), colours.

        The cloud is sub-sampled to ``PRESENCE_POINTS`` object-biased points first (as the training
        shards the heads were fitted on). Returns (points (M, 3) m, probabilities (M,), colours (M, 3)
        uint8 or None without ``rgb``), or None when
        the meta holds no recogniser, the instruction names no vocabulary object, or (with
        ``judged_only``) it describes an object the heads were not fitted on
        (:meth:`PresenceRecogniser.judges`). Locating a place reference uses ``judged_only=False``:
        an unseen object is a new combination of known colour, shape and category, and a wrong
        location costs no more than having none.
        """
        rec = self.recogniser
        if rec is None:
            return None
        refs = instruction_referents(instruction, rec.vocabulary, kind)
        if not refs or (judged_only and not rec.judges(refs)):
            return None
        rng = np.random.default_rng(self.seed if seed is None else seed)
        sel = select_points(xyz, PRESENCE_POINTS, rng)
        sub_rgb = None if rgb is None else np.asarray(rgb)[sel]
        plane = support_plane(np.asarray(xyz, dtype=np.float64))  # of the full cloud, not the sub-sample
        idx, desc = presence_descriptors(xyz[sel], sub_rgb, features[sel], plane=plane)
        if len(desc) == 0:
            empty_rgb = None if rgb is None else np.zeros((0, 3), np.uint8)
            return np.zeros((0, 3), np.float32), np.zeros(0), empty_rgb
        return (np.asarray(xyz)[sel][idx], rec.referent_probs(desc, refs),
                None if sub_rgb is None else sub_rgb[idx])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (fp16 weights) into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        meta = dict(self.meta)
        if isinstance(meta.get("presence_recogniser"), dict):  # weights as files, not JSON numbers
            PresenceRecogniser.from_meta(meta["presence_recogniser"]).save(directory)
            meta["presence_recogniser"] = "."
        (directory / "config.json").write_text(json.dumps({"policy": self.cfg.to_dict(), "meta": meta},
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
        policy = cls(model, blob.get("meta", {}))
        policy.directory = path.resolve()
        if policy.meta.get("presence_recogniser"):
            _ = policy.recogniser  # a missing or corrupt recogniser fails at load, not mid-task
        return policy

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
        t0 = time.perf_counter()
        try:
            parsed = self.understand(instruction)
            stage = dict(parsed.stages()).get(kind)
            if stage is None:
                raise NotUnderstood(f"{instruction!r} asks for no {kind}")
        except NotUnderstood as exc:
            return Decision("not_understood", kind, None, np.zeros((0, 4, 4)), np.zeros(0), -1,
                            reason=exc.reason)
        instruction = stage  # the canonical wording the text tower and the policy were trained on
        xyz = np.asarray(cloud.xyz, dtype=np.float32)
        feats = np.asarray(cloud.features, dtype=np.float32)
        if len(xyz) == 0 or feats.shape[0] != len(xyz):
            raise ValueError(f"cloud needs N>0 points with one feature each; got xyz {xyz.shape}, "
                             f"features {feats.shape}")
        if feats.shape[1] != self.cfg.feature_dim:
            raise ValueError(f"cloud features have width {feats.shape[1]} but the policy was trained on "
                             f"{self.cfg.feature_dim}; use the same CLIP model as at training time")
        rgb = getattr(cloud, "rgb", None)
        weight = float(self.meta.get("grounding_weight") or 0.0)
        referents = None
        focused = False
        if kind == "grasp":
            if self.meta.get("presence_statistic") == "recogniser" or weight > 0:
                referents = self.referent_map(xyz, rgb, feats, instruction, kind, judged_only=False)
            cands = np.zeros((0, 4, 4))
            if (weight > 0 and self.meta.get("grounding_object") and referents is not None
                    and len(referents[0])):
                # object-level grounding: candidates only on the one object the map points at
                region = target_region(referents[0], referents[1], xyz, rgb)
                focus_set = grasp_set(xyz, self.prior_cfg, seed=self.seed, focus=region)
                # on the described object a failed pose rules out only its close neighbours: the
                # object stays the target while untried poses on it are left
                near = [(c, min(float(r), FOCUS_EXCLUDE_M)) for c, r in exclude or []]
                cands = drop_excluded(focus_set.poses, near)
                focused = len(cands) > 0  # else (nothing graspable left on it): the whole scene
            if not focused:
                cands = grasp_set(xyz, self.prior_cfg, seed=self.seed).poses
        else:
            keep = None
            if weight > 0 or self.meta.get("presence_statistic") == "recogniser":
                low = below_carry_height(xyz)  # the carried object is no reference
                referents = self.referent_map(xyz[low], None if rgb is None else np.asarray(rgb)[low],
                                              feats[low], instruction, kind, judged_only=False)
                box = None if referents is None else reference_box(referents[0], referents[1])
                if box is not None:  # candidates in the named relation to where the reference is
                    def keep(xy, z, rel=parsed.relation, box=box):
                        return relation_mask(xy, z, rel, *box)
            cands = place_candidates(xyz, self.prior_cfg, keep=keep)
            if keep is not None and parsed.relation == "in" and not np.any(
                    keep(cands[:, :2, 3], cands[:, 2, 3] - self.prior_cfg.place_height_m)):
                # no flat, fully seen floor inside the container (its walls hide part of it):
                # release over its centre with the fingertips above the rim, as one drops into a box
                cands = container_drop_pose(*box, self.prior_cfg.gripper)[None]
        cands = drop_excluded(cands, exclude)
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
        sample = {"xyz": xyz[idx], "features": feats[idx], "text": text_features,
                  "rgb": None if rgb is None else np.asarray(rgb)[idx],
                  "candidates": dummy, "label": 0, "target_pose": np.eye(4)}
        batch = collate([sample], self.cfg.num_points, self.cfg.max_candidates)
        out = self.model(batch)
        relevance_topk = float(self.presence_stat(out, batch)[0])
        t3 = time.perf_counter()
        threshold = self.meta.get("presence_threshold")
        presence: float | None = relevance_topk
        if self.meta.get("presence_statistic") == "recogniser":
            # presence is judged only for objects the heads were fitted on (an unseen object is
            # located and re-weighted by its colour / shape / category, but never refused)
            judged = referents is not None and self.recogniser.judges(
                instruction_referents(instruction, self.recogniser.vocabulary, kind))
            presence = top_mean(referents[1]) if judged else None
        t4 = time.perf_counter()
        r = out["relevance"][0][batch["point_mask"][0]]
        rel = {"presence": presence, "threshold": threshold, "max": float(r.max()), "mean": float(r.mean()),
               "relevance_topk": relevance_topk}
        timings = {"priors": 1e3 * (t1 - t0), "text": 1e3 * (t2 - t1), "model": 1e3 * (t3 - t2),
                   "presence": 1e3 * (t4 - t3), "total": 1e3 * (t4 - t0)}
        if len(cands) == 0:
            return Decision("no_candidates", kind, None, cands, np.zeros(0), -1, rel, timings,
                            reason=f"no {kind} candidates in the cloud", text=instruction)
        probs = torch.softmax(out["logits"][0, : len(cands)], -1).cpu().numpy()
        if threshold is not None and presence is not None and presence < float(threshold):
            return Decision("target_not_found", kind, None, cands, probs, -1, rel, timings,
                            reason=f"nothing in the scene matches {parsed.phrase(kind)!r}", text=instruction)
        if weight > 0 and kind == "grasp" and referents is not None and not focused:
            probs = reground(probs, grounding_scores(cands[:, :3, 3], referents[0], referents[1]), weight)
        i = int(np.argmax(probs))
        return Decision("ok", kind, cands[i].copy(), cands, probs, i, rel, timings, text=instruction)
