# SPDX-License-Identifier: Apache-2.0
"""Dense CLIP patch features and text embeddings in one joint space, through open_clip.

Secondary Realignment (SR, seeds/001 §3.2.1) takes dense 2D patch-level features from the CLIP
ViT-L/14 image encoder and lifts them into 3D; its text encoder maps instructions into the same
space. This module gives both sides behind one class, :class:`ClipFeatureExtractor`:

* ``model="compact"`` (default) loads the small open_clip ``CLIP`` shipped in
  ``vla_perception/checkpoints/compact_clip/`` (config JSON + fp16 safetensors + word vocabulary),
  trained by ``vla train-clip`` on simulator renders; nothing is downloaded.
* any other open_clip model name goes through ``open_clip.create_model_and_transforms(name,
  pretrained=tag)`` (e.g. ``ViT-L-14`` / ``openai`` for a user with network, as in the paper);
  ``pretrained`` may also be a local checkpoint file (safetensors, or a torch state dict loaded with
  ``weights_only=True``) or a directory holding ``open_clip_config.json`` + weights.

Dense readout (``.dense``), exactly:

* The RGB views are resized (bilinear, antialiased; no centre crop, so the patch grid covers the
  whole image and maps linearly back to pixels) to the tower's ``image_size`` and normalised with
  the model's mean/std.
* ``readout="maskclip"`` (default for open_clip models): the tokens after the second-to-last
  block enter the last block's ``ln_1``; only the value path of its attention is kept,
  ``out_proj(W_v ln_1(x) + b_v)`` (the query-key attention, the residual and the MLP of the last
  block are skipped, as in MaskCLIP, Zhou et al. ECCV 2022, and ClearCLIP, Lan et al. ECCV 2024),
  then ``ln_post`` and ``proj``. Pooled CLIP attention mixes every patch with the class token, which
  is why the plain last-layer tokens of a contrastively trained CLIP are poorly localised.
* ``readout="tokens"``: the last block's output patch tokens, through ``ln_post`` and ``proj``.
  The compact model is trained with a patch-level loss on exactly this readout (its config says so).
* The (V, h*w, D) result is L2-normalised per patch and returned as (V, D, h, w).

Text (``.text``) is the standard ``encode_text`` (EOT-token pooling, ``text_projection``), L2
normalised. ``.text_tokens`` returns every token of the last text layer after ``ln_final`` and
``text_projection`` (the per-token features the policy's 1-Align attends with) and a padding mask.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

COMPACT_DIR = Path(__file__).parent / "checkpoints" / "compact_clip"
CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAMES = ("model.safetensors", "open_clip_model.safetensors", "open_clip_pytorch_model.bin",
                 "model.pt")
READOUTS = ("maskclip", "tokens")


def _block_sdpa(blk: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """open_clip ``ResidualAttentionBlock.forward`` (self-attention, no mask) with fused attention.

    ``x + ls_1(MHA(ln_1(x)))`` then ``+ ls_2(mlp(ln_2(.)))``, the MHA through
    ``F.scaled_dot_product_attention`` on the block's own packed ``in_proj`` weights. x (B, N, W).
    """
    attn = blk.attn
    if not getattr(attn, "batch_first", False) or not getattr(attn, "_qkv_same_embed_dim", False):
        raise ValueError("not a batch-first packed-QKV nn.MultiheadAttention")
    y = blk.ln_1(x)
    b, n, w = y.shape
    h = attn.num_heads
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).view(b, n, 3, h, w // h)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, N, W / H) each
    o = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, W / H)
    x = x + blk.ls_1(attn.out_proj(o.transpose(1, 2).reshape(b, n, w)))
    return x + blk.ls_2(blk.mlp(blk.ln_2(x)))


class WordTokenizer:
    """Word-level tokenizer over a trimmed vocabulary (the compact model's text side).

    Ids: 0 = padding, 1 = start of text, 2 = unknown word, then the vocabulary words, and the
    end-of-text id last (largest), so open_clip's argmax pooling finds it. A word outside the
    vocabulary maps to the unknown id with a warning (once per word), never an error.

    Args:
        words: the vocabulary (lower-case words, no duplicates).
        context_length: tokens per text, including start and end.
    """

    PAD, SOT, UNK = 0, 1, 2

    def __init__(self, words: list[str], context_length: int) -> None:
        self.words = list(words)
        self.index = {w: i + 3 for i, w in enumerate(self.words)}
        self.eot = len(self.words) + 3
        self.vocab_size = self.eot + 1
        self.context_length = int(context_length)
        self._warned: set[str] = set()

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-case words of ``text`` (letters, digits, apostrophes)."""
        return re.findall(r"[a-z0-9']+", text.lower())

    def __call__(self, texts: list[str] | str) -> torch.Tensor:
        """Token ids (T, context_length) int64."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = []
            for w in self.split(text):
                idx = self.index.get(w)
                if idx is None:
                    if w not in self._warned:
                        self._warned.add(w)
                        logger.warning("compact CLIP: word %r is not in its %d-word vocabulary; it is read "
                                       "as <unknown>. Use a full open_clip model (e.g. model='ViT-B-32') "
                                       "for open vocabulary.", w, len(self.words))
                    idx = self.UNK
                ids.append(idx)
            ids = [self.SOT] + ids[: self.context_length - 2] + [self.eot]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def oov(self, text: str) -> list[str]:
        """Words of ``text`` that are outside the vocabulary."""
        return [w for w in self.split(text) if w not in self.index]


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    readout: str
    source: str


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a weights-only torch file; ValueError when unreadable."""
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file: every loader raises its own type
        raise ValueError(f"CLIP checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); the file is "
                         "corrupt or not a safetensors / torch state dict. Re-export it, or run "
                         "`vla train-clip` to rebuild the compact model.") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"CLIP checkpoint {path} is not a state dict of tensors "
                         f"(got {type(state).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith("visual.") for k in state) or not any(
            k.startswith(("token_embedding", "text.", "transformer.")) for k in state):
        raise ValueError(f"CLIP checkpoint {path} is not a CLIP model: it has no 'visual.*' image tower and "
                         f"text tower tensors (first keys: {sorted(state)[:5]})")
    return state


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strictly load ``state``; ValueError naming the mismatch and the file."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or bad_shape:
        raise ValueError(f"CLIP checkpoint {path} does not match the model architecture: "
                         f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                         f"(e.g. {unexpected[:3]}), {len(bad_shape)} with other shapes "
                         f"(e.g. {bad_shape[:3]}). "
                         "Pass the model name the checkpoint was trained as.")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def _load_config(path: Path) -> dict:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"CLIP config {path} is not readable JSON ({exc})") from exc
    if not isinstance(cfg, dict) or "model_cfg" not in cfg or "vision_cfg" not in cfg["model_cfg"]:
        raise ValueError(f"CLIP config {path} has no model_cfg.vision_cfg: not an open_clip config")
    return cfg


def load_clip_dir(directory: Path) -> _Loaded:
    """An open_clip ``CLIP`` built from ``open_clip_config.json`` plus the weights next to it."""
    import open_clip

    directory = Path(directory)
    cfg = _load_config(directory / CONFIG_NAME)
    weights = next((directory / n for n in WEIGHTS_NAMES if (directory / n).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"no weights ({', '.join(WEIGHTS_NAMES)}) next to {directory / CONFIG_NAME}; "
                                "run `vla train-clip` to build the compact model")
    mcfg = dict(cfg["model_cfg"])
    tok_cfg = cfg.get("tokenizer", {"type": "open_clip"})
    tokenizer: Any
    if tok_cfg.get("type") == "word":
        words = json.loads((directory / tok_cfg.get("vocab_file", "vocab.json")).read_text())
        tokenizer = WordTokenizer(words, mcfg["text_cfg"]["context_length"])
        if mcfg["text_cfg"].get("vocab_size") != tokenizer.vocab_size:
            raise ValueError(f"{directory}: vocab.json has {tokenizer.vocab_size} ids but the model expects "
                             f"{mcfg['text_cfg'].get('vocab_size')}")
    else:
        tokenizer = open_clip.get_tokenizer(tok_cfg.get("name", "ViT-B-32"))
    model = open_clip.model.CLIP(**mcfg)
    _load_into(model, _read_weights(weights), weights)
    pp = cfg.get("preprocess_cfg", {})
    mean = tuple(pp.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(pp.get("std", open_clip.OPENAI_DATASET_STD))
    return _Loaded(model, tokenizer, mean, std, cfg.get("readout", "tokens"), str(directory))


def _load_open_clip(name: str, pretrained: str | None) -> _Loaded:
    import open_clip

    if name not in open_clip.list_models():
        raise ValueError(f"unknown CLIP model {name!r}: use 'compact', a directory with {CONFIG_NAME}, "
                         f"or one of open_clip.list_models() (e.g. 'ViT-B-32', 'ViT-L-14')")
    path = Path(pretrained) if pretrained else None
    if path is not None and (path.exists() or path.suffix in (".safetensors", ".pt", ".bin", ".pth")):
        model = open_clip.create_model(name, pretrained=None)
        _load_into(model, _read_weights(path), path)
        source = f"{name} + {path}"
    else:
        # Network path: open_clip downloads the tagged weights (e.g. 'openai'); None = random init.
        model, _, _ = open_clip.create_model_and_transforms(name, pretrained=pretrained)
        source = f"{name}/{pretrained or 'random-init'}"
    mean = tuple(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    return _Loaded(model, open_clip.get_tokenizer(name), mean, std, "maskclip", source)


class ClipFeatureExtractor:
    """Dense image and text CLIP embeddings in one joint space (see the module docstring).

    Args:
        model: ``"compact"`` (shipped), a directory with ``open_clip_config.json`` and weights, or an
            open_clip model name (``"ViT-B-32"``, ``"ViT-L-14"``...).
        pretrained: for an open_clip name: None (random init, for timing), an open_clip tag such as
            ``"openai"`` (downloads; needs network), or a local checkpoint file.
        device: torch device.
        readout: ``"maskclip"`` or ``"tokens"``; None = the model's default (compact: tokens).
    """

    def __init__(self, model: str = "compact", pretrained: str | None = None, device: str = "cpu",
                 readout: str | None = None) -> None:
        if model == "compact":
            loaded = load_clip_dir(COMPACT_DIR)
        elif Path(model).is_dir():
            loaded = load_clip_dir(Path(model))
        else:
            loaded = _load_open_clip(model, pretrained)
        self.readout = readout or loaded.readout
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        self.model = loaded.model.to(device).eval()
        self.tokenizer = loaded.tokenizer
        self.device = torch.device(device)
        self.source = loaded.source
        visual = self.model.visual
        if not hasattr(visual, "transformer") or not hasattr(visual, "conv1"):
            raise ValueError(f"{self.source}: dense features need an open_clip VisionTransformer image "
                             f"tower, got {type(visual).__name__}")
        size = visual.image_size
        self.image_size: tuple[int, int] = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.grid_size: tuple[int, int] = tuple(visual.grid_size)
        self._mean = torch.tensor(loaded.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(loaded.std, device=self.device).view(1, 3, 1, 1)
        self.dim: int = int(visual.proj.shape[1])
        self._fast_blocks = self._check_fast_blocks()

    # ------------------------------------------------------------------ image side
    def _check_fast_blocks(self) -> bool:
        """Whether :func:`_block_sdpa` reproduces the tower's own blocks (checked on random tokens).

        open_clip's blocks run ``nn.MultiheadAttention``, which on CPU computes the score matrix,
        softmax and weighted sum as separate kernels; the fused ``scaled_dot_product_attention``
        is ~10 % faster for the whole compact tower. Blocks of another layout (custom attention,
        extra norms) fail the check and keep their own forward.
        """
        blocks = self.model.visual.transformer.resblocks
        try:
            width = blocks[0].ln_1.normalized_shape[0]
            x = torch.randn(2, 5, width, generator=torch.Generator().manual_seed(0)).to(self.device)
            with torch.inference_mode():
                return all(torch.allclose(_block_sdpa(b, x), b(x), atol=1e-4, rtol=1e-4) for b in blocks)
        except (AttributeError, RuntimeError, TypeError, ValueError, IndexError):
            return False

    def _run_block(self, blk: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
        return _block_sdpa(blk, t) if self._fast_blocks else blk(t)

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """(V, H, W, 3) uint8 -> (V, 3, h_in, w_in) normalised float tensor at the tower's size."""
        rgb = np.asarray(rgb)
        if rgb.ndim == 3:
            rgb = rgb[None]
        if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"dense() expects (V, H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(0, 3, 1, 2)
        if tuple(x.shape[-2:]) != self.image_size:
            # resizing the uint8 image is ~3x cheaper than float and differs by < 1 grey level
            x = F.interpolate(x.contiguous(), size=self.image_size, mode="bilinear", align_corners=False,
                              antialias=True)
        return (x.float() / 255.0 - self._mean) / self._std  # (V, 3, h_in, w_in)

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised image tensor (V, 3, h_in, w_in) -> unnormalised patch embeddings (V, h*w, D)."""
        visual = self.model.visual
        t = visual._embeds(x)  # (V, 1 + h*w, width)
        blocks = visual.transformer.resblocks
        if self.readout == "tokens":
            for blk in blocks:
                t = self._run_block(blk, t)
        else:
            for blk in blocks[:-1]:
                t = self._run_block(blk, t)
            last = blocks[-1]
            attn = last.attn
            y = last.ln_1(t)
            width = y.shape[-1]
            # nn.MultiheadAttention and open_clip's Attention both pack q, k, v in in_proj_*
            w_v = attn.in_proj_weight[2 * width:]
            bias = getattr(attn, "in_proj_bias", None)
            b_v = bias[2 * width:] if bias is not None else None
            v = F.linear(y, w_v, b_v)  # (V, 1 + h*w, width)
            t = last.ls_1(attn.out_proj(v))
        t = visual.ln_post(t[:, 1:])  # drop the class token -> (V, h*w, width)
        return t @ visual.proj  # (V, h*w, D)

    @torch.inference_mode()
    def dense(self, rgb: np.ndarray, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Dense, L2-normalised patch embeddings.

        Args:
            rgb: (V, H, W, 3) uint8 views (all the same size).
            out_size: optional (H, W) to upsample the maps to (bilinear); default: the patch grid.

        Returns:
            (V, D, h, w) float32 tensor on the extractor's device.
        """
        x = self.preprocess(rgb)
        feats = F.normalize(self.patch_tokens(x).float(), dim=-1)  # (V, h*w, D)
        v = feats.shape[0]
        h, w = self.grid_size
        maps = feats.transpose(1, 2).reshape(v, self.dim, h, w)  # (V, D, h, w)
        if out_size is not None:
            maps = F.interpolate(maps, size=out_size, mode="bilinear", align_corners=False)
            maps = F.normalize(maps, dim=1)
        return maps

    @torch.inference_mode()
    def image(self, rgb: np.ndarray) -> torch.Tensor:
        """Pooled, L2-normalised image embeddings (V, D) (the CLIP image feature of each whole view)."""
        return F.normalize(self.model.encode_image(self.preprocess(rgb)).float(), dim=-1)

    # ------------------------------------------------------------------ text side
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (T, L) for ``texts``."""
        if isinstance(texts, str):
            texts = [texts]
        return self.tokenizer(list(texts)).to(self.device)

    @torch.inference_mode()
    def text(self, texts: list[str]) -> torch.Tensor:
        """(T, D) L2-normalised text embeddings."""
        return F.normalize(self.model.encode_text(self.tokenize(texts)).float(), dim=-1)

    @torch.inference_mode()
    def text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token text features in the joint space.

        Returns:
            tokens: (T, L, D) last-layer token features after ``ln_final`` and ``text_projection``
                (not normalised; L = context length).
            mask: (T, L) bool, True for real tokens (start, words, end), False for padding.
        """
        ids = self.tokenize(texts)  # (T, L)
        m = self.model
        if not hasattr(m, "token_embedding"):
            raise ValueError(f"{self.source}: text_tokens() supports open_clip CLIP text towers only")
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(ids).to(cast) + m.positional_embedding.to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))  # (T, L, width)
        proj = m.text_projection
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj  # (T, L, D)
        return x.float(), ids != 0
