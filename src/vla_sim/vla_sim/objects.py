# SPDX-License-Identifier: Apache-2.0
"""The object catalogue of the benchmark: what exists, what it is called, how to build it.

The papers' benchmark (Secondary Realignment, Sec. 4; A2) uses seen and unseen object sets; the
public A2 assets are on Google Drive and not reachable here, so this catalogue is built from
primitives we generate and meshes that ship inside the ``pybullet_data`` package (zlib licence),
resolved at run time (nothing is copied into the repository).

Splits:

- ``seen``: objects whose names, colours, shapes, categories and functions appear in training data.
- ``unseen``: new meshes, sizes and new colour/shape/category combinations, described only with
  words the seen set already uses (a CLIP trained on our renders cannot know a word it never read).
- ``novel_word``: a few objects whose names use words that never occur in seen captions, for users
  of pretrained CLIP weights.

Every object is graspable by an 85 mm parallel gripper (its smallest side is at most 70 mm) and
rests stably on the table in its canonical ("upright") orientation. Sizes are in metres, masses in
kilograms. Object names are unique and double as the scene's object keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

SPLITS = ("seen", "unseen", "novel_word")
GRIPPER_MAX_OPENING_M = 0.085
GRASPABLE_WIDTH_M = 0.070


@dataclass(frozen=True)
class Colour:
    """A named colour with its RGBA (0..1) render colour."""

    name: str
    rgba: tuple[float, float, float, float]


COLOURS: dict[str, Colour] = {
    c.name: c
    for c in [
        Colour("red", (0.85, 0.10, 0.10, 1.0)),
        Colour("green", (0.15, 0.65, 0.20, 1.0)),
        Colour("blue", (0.12, 0.30, 0.85, 1.0)),
        Colour("yellow", (0.95, 0.85, 0.10, 1.0)),
        Colour("orange", (0.98, 0.55, 0.08, 1.0)),
        Colour("purple", (0.50, 0.20, 0.65, 1.0)),
        Colour("pink", (0.98, 0.55, 0.70, 1.0)),
        Colour("white", (0.93, 0.93, 0.93, 1.0)),
        Colour("black", (0.08, 0.08, 0.08, 1.0)),
        Colour("brown", (0.55, 0.35, 0.17, 1.0)),
        Colour("grey", (0.55, 0.55, 0.57, 1.0)),
    ]
}


@dataclass(frozen=True)
class Geometry:
    """How to build an object in PyBullet.

    Attributes:
        kind: ``box`` (size = full extents x, y, z), ``cylinder`` (radius, height), ``sphere``
            (radius,), ``capsule`` (radius, total length; lies along x), ``open_box`` (outer x, y,
            z, wall thickness: a container open at the top) or ``mesh``.
        size: see ``kind``; for ``mesh`` unused.
        mesh: visual OBJ path relative to the ``pybullet_data`` folder (``mesh`` only).
        collision: ``mesh`` only: ``hull`` (convex hull of the visual mesh), ``box`` (its bounding
            box), or an OBJ path relative to ``pybullet_data`` (a convex decomposition, one hull per
            ``o`` group).
        extent_m: ``mesh`` only: the mesh is scaled uniformly so that its largest side is this long.
        upright_rpy: ``mesh`` only: rotation (roll, pitch, yaw, radians) that makes the mesh's up
            axis the body's +z (OBJ files from Collada are y-up).
        keep_texture: ``mesh`` only: keep the mesh's own texture (else it is drawn in plain colour).
    """

    kind: str
    size: tuple[float, ...] = ()
    mesh: str | None = None
    collision: str = "hull"
    extent_m: float = 0.0
    upright_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    keep_texture: bool = False

    def __post_init__(self) -> None:
        n_size = {"box": 3, "cylinder": 2, "sphere": 1, "capsule": 2, "open_box": 4, "mesh": 0}
        if self.kind not in n_size:
            raise ValueError(f"Geometry.kind must be one of {sorted(n_size)}, got {self.kind!r}")
        if len(self.size) != n_size[self.kind]:
            raise ValueError(f"Geometry {self.kind} needs {n_size[self.kind]} size values, got {self.size}")
        if self.kind == "mesh" and (not self.mesh or self.extent_m <= 0):
            raise ValueError("a mesh Geometry needs `mesh` (path in pybullet_data) and `extent_m` > 0")


@dataclass(frozen=True)
class ObjectSpec:
    """One catalogue object.

    Attributes:
        name: unique name used in instructions ("red mug").
        colour: its colour (name + RGBA).
        shape: shape word ("round", "cylindrical", "cubic", "rectangular", "long", "flat", ...).
        category: category noun ("fruit", "cup", "toy", ...).
        function: what it is for, as in "something to drink from".
        split: ``seen``, ``unseen`` or ``novel_word``.
        geometry: how to build it.
        mass_kg: mass.
        friction: lateral friction coefficient.
        supports: ``in`` for containers, ``on`` for things one can put something on, else None.
        grasp_target: False for large flat references (books, trays) that the grasp tasks never ask
            for (they are still graspable by an edge, but they are scene furniture).
        source: where the geometry comes from; ``licence``: its licence.
    """

    name: str
    colour: Colour
    shape: str
    category: str
    function: str
    split: str
    geometry: Geometry
    mass_kg: float = 0.1
    friction: float = 1.0
    supports: str | None = None
    grasp_target: bool = True
    source: str = "generated primitive"
    licence: str = "Apache-2.0 (this project)"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"object {self.name!r}: split must be one of {SPLITS}, got {self.split!r}")
        if self.supports not in (None, "on", "in"):
            raise ValueError(f"object {self.name!r}: supports must be None, 'on' or 'in'")

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        """Render colour."""
        return self.colour.rgba

    @property
    def mesh_scale(self) -> float:
        """Uniform scale applied to the mesh (1.0 for primitives)."""
        if self.geometry.kind != "mesh":
            return 1.0
        lo, hi = mesh_bounds(self.geometry.mesh)
        return self.geometry.extent_m / float(np.max(hi - lo))

    @property
    def size_m(self) -> np.ndarray:
        """(3,) bounding-box sides in metres of the object in its upright orientation."""
        g = self.geometry
        if g.kind in ("box", "open_box"):
            return np.array(g.size[:3], dtype=np.float64)
        if g.kind == "cylinder":
            return np.array([2 * g.size[0], 2 * g.size[0], g.size[1]])
        if g.kind == "sphere":
            return np.full(3, 2 * g.size[0])
        if g.kind == "capsule":
            return np.array([g.size[1], 2 * g.size[0], 2 * g.size[0]])
        lo, hi = mesh_bounds(g.mesh)
        ext = (hi - lo) * self.mesh_scale
        R = _rpy_matrix(g.upright_rpy)
        return np.abs(R) @ ext  # extents of the rotated box (exact for 90-degree rotations)

    def surface_points(self) -> np.ndarray:
        """(N, 3) points on the object's surface in its body frame (for grasp-width estimates)."""
        return _surface_points(self.name)

    def description_words(self) -> set[str]:
        """All words that instructions may use to describe this object."""
        text = " ".join([self.name, self.colour.name, self.shape, self.category, self.function])
        return set(text.lower().split())


def pybullet_data_path() -> Path:
    """The folder of the installed ``pybullet_data`` package (meshes are read from there)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath())


@cache
def mesh_bounds(rel_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(min (3,), max (3,)) vertex bounds of an OBJ in ``pybullet_data``, in file units."""
    path = pybullet_data_path() / rel_path
    if not path.is_file():
        raise FileNotFoundError(
            f"mesh {rel_path!r} not found in pybullet_data ({path}); "
            "reinstall pybullet (`pip install pybullet`)"
        )
    verts = []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(v) for v in line.split()[1:4]])
    v = np.asarray(verts, dtype=np.float64)  # (N, 3)
    return v.min(axis=0), v.max(axis=0)


@cache
def _mesh_vertices(rel_path: str) -> np.ndarray:
    verts = []
    with open(pybullet_data_path() / rel_path) as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(v) for v in line.split()[1:4]])
    return np.asarray(verts, dtype=np.float64)  # (N, 3)


@cache
def _surface_points(name: str) -> np.ndarray:
    spec = _BY_NAME[name]
    g = spec.geometry
    ang = np.linspace(0.0, 2 * math.pi, 24, endpoint=False)
    circle = np.stack([np.cos(ang), np.sin(ang)], axis=1)  # (24, 2)
    if g.kind in ("box", "open_box"):
        half = np.asarray(g.size[:3]) / 2
        t = np.linspace(-1.0, 1.0, 9)
        a, b = (m.ravel() for m in np.meshgrid(t, t))  # (81,) face grid
        faces = []
        for axis in range(3):
            u, v = [i for i in range(3) if i != axis]
            for sign in (-1.0, 1.0):
                f = np.zeros((a.size, 3))
                f[:, axis], f[:, u], f[:, v] = sign, a, b
                faces.append(f)
        return np.concatenate(faces) * half  # (486, 3) points on the six faces
    if g.kind == "cylinder":
        r, h = g.size
        rings = [
            np.concatenate([r * circle, np.full((24, 1), z)], axis=1) for z in np.linspace(-h / 2, h / 2, 7)
        ]
        caps = [np.concatenate([0.5 * r * circle, np.full((24, 1), z)], axis=1) for z in (-h / 2, h / 2)]
        return np.concatenate(rings + caps + [[[0, 0, -h / 2], [0, 0, h / 2]]])
    if g.kind in ("sphere", "capsule"):
        r = g.size[0]
        u = np.linspace(0, math.pi, 9)[1:-1]
        sph = np.concatenate(
            [[[0, 0, r], [0, 0, -r]]]
            + [
                np.concatenate([r * math.sin(a) * circle, np.full((24, 1), r * math.cos(a))], axis=1)
                for a in u
            ]
        )
        if g.kind == "sphere":
            return sph
        h = g.size[1] / 2 - r  # capsule along x
        return np.concatenate([sph + [h, 0, 0], sph - [h, 0, 0]])
    v = _mesh_vertices(g.mesh)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v = v[:: max(1, len(v) // 400)]
    R = _rpy_matrix(g.upright_rpy)
    return (R @ ((v - (lo + hi) / 2) * spec.mesh_scale).T).T


def _rpy_matrix(rpy: tuple[float, float, float]) -> np.ndarray:
    """(3, 3) rotation of fixed-axis roll, pitch, yaw (PyBullet's Euler convention)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


# ---------------------------------------------------------------------------------------------
# Catalogue. Helpers keep each entry on one line.
_PBD = "pybullet_data (pybullet package)"
_ZLIB = "zlib"
_EAT, _DRINK_FROM, _DRINK = "something to eat", "something to drink from", "something to drink"
_PLAY, _BUILD, _WRITE = "something to play with", "something to build with", "something to write with"
_CLEAN, _FIX, _PUT_IN = (
    "something to clean with",
    "something to fix things with",
    "something to put things in",
)
_READ, _PUT_ON = "something to read", "something to put things on"
_X90 = (math.pi / 2, 0.0, 0.0)


def _o(
    name: str,
    colour: str,
    shape: str,
    category: str,
    function: str,
    split: str,
    geom: Geometry,
    mass: float = 0.1,
    **kw,
) -> ObjectSpec:
    """Catalogue entry; mesh geometry records pybullet_data as source and zlib as licence."""
    if geom.kind == "mesh":
        kw.setdefault("source", f"{_PBD}: {geom.mesh}")
        kw.setdefault("licence", _ZLIB)
    return ObjectSpec(name, COLOURS[colour], shape, category, function, split, geom, mass, **kw)


def _box(x: float, y: float, z: float) -> Geometry:
    return Geometry("box", (x, y, z))


def _cyl(r: float, h: float) -> Geometry:
    return Geometry("cylinder", (r, h))


def _sph(r: float) -> Geometry:
    return Geometry("sphere", (r,))


def _cap(r: float, length: float) -> Geometry:
    return Geometry("capsule", (r, length))


def _mesh(
    path: str, extent: float, collision: str = "hull", rpy=(0.0, 0.0, 0.0), texture: bool = False
) -> Geometry:
    return Geometry(
        "mesh", mesh=path, collision=collision, extent_m=extent, upright_rpy=rpy, keep_texture=texture
    )


_MUG = _mesh("objects/mug.obj", 0.10, "objects/mug_col.obj")
_DUCK = _mesh("duck.obj", 0.085, "duck_vhacd.obj", _X90, texture=True)
_TEDDY = _mesh("teddy2_VHACD_CHs.obj", 0.10, "teddy2_VHACD_CHs.obj")
_LEGO = _mesh("lego/lego.obj", 0.048, "box", _X90)

CATALOGUE: list[ObjectSpec] = [
    # --- seen: fruit -------------------------------------------------------------------------
    _o("red apple", "red", "round", "fruit", _EAT, "seen", _sph(0.034), 0.15),
    _o("green apple", "green", "round", "fruit", _EAT, "seen", _sph(0.033), 0.15),
    _o("orange", "orange", "round", "fruit", _EAT, "seen", _sph(0.035), 0.15),
    _o("lemon", "yellow", "oval", "fruit", _EAT, "seen", _cap(0.026, 0.085), 0.1),
    _o("banana", "yellow", "long", "fruit", _EAT, "seen", _cap(0.018, 0.17), 0.12),
    _o("peach", "pink", "round", "fruit", _EAT, "seen", _sph(0.031), 0.12),
    _o("plum", "purple", "round", "fruit", _EAT, "seen", _sph(0.026), 0.08),
    _o("pear", "green", "oval", "fruit", _EAT, "seen", _cap(0.029, 0.10), 0.14),
    # --- seen: cups and drinks ------------------------------------------------------------------
    _o("red mug", "red", "cylindrical", "cup", _DRINK_FROM, "seen", _MUG, 0.2),
    _o("blue mug", "blue", "cylindrical", "cup", _DRINK_FROM, "seen", _MUG, 0.2),
    _o("white cup", "white", "cylindrical", "cup", _DRINK_FROM, "seen", _cyl(0.034, 0.09), 0.1),
    _o("yellow cup", "yellow", "cylindrical", "cup", _DRINK_FROM, "seen", _cyl(0.031, 0.08), 0.1),
    _o("red soda can", "red", "cylindrical", "drink", _DRINK, "seen", _cyl(0.033, 0.12), 0.2),
    _o("green soda can", "green", "cylindrical", "drink", _DRINK, "seen", _cyl(0.033, 0.12), 0.2),
    _o("blue water bottle", "blue", "cylindrical", "drink", _DRINK, "seen", _cyl(0.030, 0.16), 0.25),
    # --- seen: toys -------------------------------------------------------------------------
    _o("yellow duck", "yellow", "irregular", "toy", _PLAY, "seen", _DUCK, 0.08),
    _o("pink teddy bear", "pink", "irregular", "toy", _PLAY, "seen", _TEDDY, 0.1),
    _o("red ball", "red", "round", "toy", _PLAY, "seen", _sph(0.030), 0.06),
    _o("blue ball", "blue", "round", "toy", _PLAY, "seen", _sph(0.030), 0.06),
    _o("green ball", "green", "round", "toy", _PLAY, "seen", _sph(0.027), 0.05),
    _o("red lego brick", "red", "cubic", "toy", _PLAY, "seen", _LEGO, 0.05),
    _o("blue lego brick", "blue", "cubic", "toy", _PLAY, "seen", _LEGO, 0.05),
    _o("green lego brick", "green", "cubic", "toy", _PLAY, "seen", _LEGO, 0.05),
    # --- seen: blocks -----------------------------------------------------------------------
    _o("red cube", "red", "cubic", "block", _BUILD, "seen", _box(0.05, 0.05, 0.05), 0.1),
    _o("green cube", "green", "cubic", "block", _BUILD, "seen", _box(0.05, 0.05, 0.05), 0.1),
    _o("blue cube", "blue", "cubic", "block", _BUILD, "seen", _box(0.05, 0.05, 0.05), 0.1),
    _o("yellow cube", "yellow", "cubic", "block", _BUILD, "seen", _box(0.045, 0.045, 0.045), 0.08),
    _o("wooden block", "brown", "rectangular", "block", _BUILD, "seen", _box(0.15, 0.05, 0.03), 0.12),
    _o("orange block", "orange", "rectangular", "block", _BUILD, "seen", _box(0.09, 0.045, 0.04), 0.1),
    _o("white block", "white", "rectangular", "block", _BUILD, "seen", _box(0.07, 0.035, 0.035), 0.08),
    # --- seen: stationery and tools ---------------------------------------------------------
    _o("black marker", "black", "long", "writing tool", _WRITE, "seen", _cap(0.011, 0.13), 0.03),
    _o("blue pen", "blue", "long", "writing tool", _WRITE, "seen", _cap(0.009, 0.14), 0.02),
    _o("red pencil", "red", "long", "writing tool", _WRITE, "seen", _box(0.16, 0.014, 0.014), 0.02),
    _o("orange screwdriver", "orange", "long", "tool", _FIX, "seen", _cap(0.015, 0.16), 0.08),
    _o("grey wrench", "grey", "flat", "tool", _FIX, "seen", _box(0.16, 0.035, 0.015), 0.15),
    _o("black tape", "black", "round", "tool", _FIX, "seen", _cyl(0.035, 0.03), 0.08),
    # --- seen: cleaning ---------------------------------------------------------------------
    _o(
        "yellow sponge",
        "yellow",
        "rectangular",
        "cleaning tool",
        _CLEAN,
        "seen",
        _box(0.09, 0.06, 0.03),
        0.03,
    ),
    _o("white soap", "white", "rectangular", "cleaning tool", _CLEAN, "seen", _box(0.08, 0.05, 0.03), 0.1),
    _o("green brush", "green", "long", "cleaning tool", _CLEAN, "seen", _box(0.12, 0.04, 0.04), 0.08),
    # --- seen: containers and supports (place references) -----------------------------------
    _o(
        "blue box",
        "blue",
        "square",
        "container",
        _PUT_IN,
        "seen",
        Geometry("open_box", (0.13, 0.13, 0.055, 0.008)),
        0.2,
        supports="in",
        grasp_target=False,
    ),
    _o(
        "brown basket",
        "brown",
        "rectangular",
        "container",
        _PUT_IN,
        "seen",
        Geometry("open_box", (0.16, 0.12, 0.06, 0.008)),
        0.25,
        supports="in",
        grasp_target=False,
    ),
    _o(
        "grey tray",
        "grey",
        "flat",
        "container",
        _PUT_IN,
        "seen",
        Geometry("open_box", (0.18, 0.14, 0.03, 0.008)),
        0.25,
        supports="in",
        grasp_target=False,
    ),
    _o(
        "green plate",
        "green",
        "flat",
        "plate",
        _PUT_ON,
        "seen",
        _cyl(0.065, 0.015),
        0.2,
        supports="on",
        grasp_target=False,
    ),
    _o(
        "red book",
        "red",
        "flat",
        "book",
        _READ,
        "seen",
        _box(0.16, 0.11, 0.03),
        0.3,
        supports="on",
        grasp_target=False,
    ),
    _o(
        "blue book",
        "blue",
        "flat",
        "book",
        _READ,
        "seen",
        _box(0.15, 0.10, 0.025),
        0.3,
        supports="on",
        grasp_target=False,
    ),
    _o(
        "brown box",
        "brown",
        "rectangular",
        "container",
        _PUT_ON,
        "seen",
        _box(0.13, 0.10, 0.06),
        0.3,
        supports="on",
        grasp_target=False,
    ),
    # --- unseen: new meshes, sizes and combinations, described with seen words --------------
    _o("green mug", "green", "cylindrical", "cup", _DRINK_FROM, "unseen", _MUG, 0.2),
    _o(
        "white mug",
        "white",
        "cylindrical",
        "cup",
        _DRINK_FROM,
        "unseen",
        _mesh("objects/mug.obj", 0.09, "objects/mug_col.obj"),
        0.15,
    ),
    _o("yellow ball", "yellow", "round", "toy", _PLAY, "unseen", _sph(0.033), 0.06),
    _o("purple cube", "purple", "cubic", "block", _BUILD, "unseen", _box(0.055, 0.055, 0.055), 0.1),
    _o("orange soda can", "orange", "cylindrical", "drink", _DRINK, "unseen", _cyl(0.029, 0.11), 0.18),
    _o(
        "white duck",
        "white",
        "irregular",
        "toy",
        _PLAY,
        "unseen",
        _mesh("duck_vhacd.obj", 0.075, "duck_vhacd.obj", _X90),
        0.07,
    ),
    _o(
        "blue teddy bear",
        "blue",
        "irregular",
        "toy",
        _PLAY,
        "unseen",
        _mesh("teddy2_VHACD_CHs.obj", 0.09, "teddy2_VHACD_CHs.obj"),
        0.09,
    ),
    _o("red wooden block", "red", "rectangular", "block", _BUILD, "unseen", _box(0.12, 0.04, 0.04), 0.1),
    _o(
        "blue cylindrical block",
        "blue",
        "cylindrical",
        "block",
        _BUILD,
        "unseen",
        _mesh("toys/cylinder.obj", 0.075),
        0.08,
    ),
    _o("green block", "green", "cubic", "block", _BUILD, "unseen", _mesh("toys/cube.obj", 0.06), 0.08),
    _o(
        "yellow lego brick",
        "yellow",
        "cubic",
        "toy",
        _PLAY,
        "unseen",
        _mesh("lego/lego.obj", 0.056, "box", _X90),
        0.06,
    ),
    _o("pink cup", "pink", "cylindrical", "cup", _DRINK_FROM, "unseen", _cyl(0.028, 0.10), 0.1),
    _o("orange ball", "orange", "round", "toy", _PLAY, "unseen", _sph(0.025), 0.05),
    _o(
        "black sponge",
        "black",
        "rectangular",
        "cleaning tool",
        _CLEAN,
        "unseen",
        _box(0.10, 0.065, 0.025),
        0.03,
    ),
    _o("yellow marker", "yellow", "long", "writing tool", _WRITE, "unseen", _cap(0.012, 0.12), 0.03),
    _o("red toy", "red", "irregular", "toy", _PLAY, "unseen", _mesh("random_urdfs/009/009.obj", 0.09), 0.08),
    _o(
        "green toy",
        "green",
        "irregular",
        "toy",
        _PLAY,
        "unseen",
        _mesh("random_urdfs/033/033.obj", 0.09),
        0.08,
    ),
    _o("purple apple", "purple", "round", "fruit", _EAT, "unseen", _sph(0.032), 0.14),
    # --- novel words: names never used in seen captions ---------------------------------------
    _o(
        "rabbit figurine",
        "white",
        "irregular",
        "toy",
        _PLAY,
        "novel_word",
        _mesh("bunny.obj", 0.09, "hull", _X90),
        0.08,
    ),
    _o(
        "donut",
        "brown",
        "round",
        "snack",
        _EAT,
        "novel_word",
        _mesh("torus/torus_textured.obj", 0.10, "hull", _X90),
        0.06,
    ),
    _o(
        "football",
        "white",
        "round",
        "toy",
        _PLAY,
        "novel_word",
        _mesh("soccerball.obj", 0.066, texture=True),
        0.05,
    ),
    _o(
        "triangular prism",
        "green",
        "triangular",
        "block",
        _BUILD,
        "novel_word",
        _mesh("toys/prism.obj", 0.08, "hull", _X90),
        0.07,
    ),
]

_BY_NAME = {o.name: o for o in CATALOGUE}
if len(_BY_NAME) != len(CATALOGUE):  # pragma: no cover (guards edits to the table above)
    raise RuntimeError("object names in CATALOGUE must be unique")


def by_split(split: str) -> list[ObjectSpec]:
    """All objects of one split (``seen``, ``unseen`` or ``novel_word``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return [o for o in CATALOGUE if o.split == split]


def get(name: str) -> ObjectSpec:
    """The catalogue entry called ``name``; KeyError lists close names when it does not exist."""
    try:
        return _BY_NAME[name]
    except KeyError:
        close = [n for n in _BY_NAME if any(w in n for w in name.split())][:8]
        raise KeyError(f"no object named {name!r} in the catalogue; similar: {close}") from None


def seen_vocabulary() -> set[str]:
    """Every word used to describe seen objects (names, colours, shapes, categories, functions)."""
    words: set[str] = set()
    for o in by_split("seen"):
        words |= o.description_words()
    return words


def catalogue_markdown() -> str:
    """The catalogue as the Markdown table of OBJECTS.md.

    Regenerate with ``python -m vla_sim.objects > src/vla_sim/vla_sim/OBJECTS.md``.
    """
    lines = [
        "<!-- SPDX-License-Identifier: Apache-2.0 -->",
        "# Object catalogue",
        "",
        "Generated from `vla_sim/objects.py` by `python -m vla_sim.objects`. Meshes are read at run time",
        "from the installed `pybullet_data` package (part of the pybullet wheel, zlib licence; see",
        "https://github.com/bulletphysics/bullet3/blob/master/LICENSE.txt); nothing is copied into this",
        "repository. Primitives (box, cylinder, sphere, capsule, open box) are generated by our code.",
        "Sizes are the upright bounding box in millimetres.",
        "",
        f"Counts: {len(by_split('seen'))} seen, {len(by_split('unseen'))} unseen, "
        f"{len(by_split('novel_word'))} novel-word.",
        "",
        "| name | split | colour | shape | category | function | size (mm) | mass (kg) | source | licence |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in CATALOGUE:
        size = " x ".join(f"{v * 1000:.0f}" for v in o.size_m)
        lines.append(
            f"| {o.name} | {o.split} | {o.colour.name} | {o.shape} | {o.category} | {o.function} | "
            f"{size} | {o.mass_kg:g} | {o.source} | {o.licence} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(catalogue_markdown(), end="")
