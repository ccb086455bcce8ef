r"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), as used by DM, IDM and HDD.

A *strategy* such as ``"color_crop_cutout_flip_scale_rotate"`` names augmentation families; every
call picks **one** family at random per group of images (DSA's single mode ``"S"``) and applies only
its ops, differentiably in the images. The ops and their formulas: :func:`_color` (brightness
:math:`x + (r_1 - \tfrac12)\beta`, saturation :math:`(x - \bar x_c) r_2\sigma + \bar x_c`, contrast
:math:`(x - \bar x)(r_3 + \kappa) + \bar x`), :func:`_crop`, :func:`_cutout`, :func:`_flip`, and
``scale`` / ``rotate`` by bilinear ``affine_grid``/``grid_sample`` (``align_corners=True``, zero padding).

*Siamese*: a class's real and synthetic images share family and parameters (:func:`siamese`); evaluation training
uses one family per batch, parameters per image (:func:`augment`). Parameters are drawn on the CPU from an explicit
``torch.Generator`` (same transforms on every device). Images are ``[G, N, C, H, W]``, parameters ``[G, P]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["FAMILIES", "DSAConfig", "DSAParams", "parse_strategy", "sample", "apply", "siamese", "augment", "cutmix"]

#: Every augmentation family, in the order of the reference strategy string.
FAMILIES: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")

def parse_strategy(strategy: str) -> tuple[str, ...]:
    """Split a ``'_'``-joined strategy into its families (``"none"``, ``""``: ``()``); repeats weight the draw."""
    if strategy.strip().lower() in ("", "none"):
        return ()
    names = tuple(strategy.split("_"))
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown DSA famil{'y' if len(unknown) == 1 else 'ies'} {unknown} in strategy {strategy!r}; "
                         f"known: {', '.join(FAMILIES)} (joined by '_'), or 'none'")
    return names


@dataclass(frozen=True)
class DSAConfig:
    r"""DSA hyper-parameters (SPEC defaults; names as in the reference ``ParamDiffAug``): scale factors in
    :math:`[1/\lambda, \lambda)`, rotation in :math:`[-\alpha, \alpha)` degrees, crop shift and cutout side
    as fractions of the side, brightness in :math:`[-\beta/2, \beta/2)`, saturation in :math:`[0, \sigma)`,
    contrast in :math:`[\kappa, \kappa + 1)`, flip probability."""

    strategy: str = "color_crop_cutout_flip_scale_rotate"
    scale: float = 1.2
    rotate: float = 15.0
    crop: float = 0.125
    cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    flip: float = 0.5

    def __post_init__(self) -> None:
        parse_strategy(self.strategy)  # fail at construction on unknown families
        if not self.scale >= 1.0:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if not (0.0 <= self.crop <= 1.0 and 0.0 <= self.cutout <= 1.0 and 0.0 <= self.flip <= 1.0):
            raise ValueError(f"crop, cutout and flip must lie in [0, 1], got {self.crop}, {self.cutout}, {self.flip}")

    @property
    def families(self) -> tuple[str, ...]:
        """The families of :attr:`strategy` (empty for ``"none"``)."""
        return parse_strategy(self.strategy)


@dataclass(frozen=True)
class DSAParams:
    r"""One draw of DSA parameters for ``G`` groups (CPU tensors ``[G, P, ...]``; axis pairs (height, width)).

    ``family [G]`` indexes ``families`` (``-1``: identity); each group uses only its family's parameters:
    ``brightness`` :math:`(r - 1/2)\beta`, ``saturation`` :math:`r\sigma`, ``contrast`` :math:`r + \kappa`,
    ``shift`` (crop), ``cutout`` centre, ``flip``, ``scale`` :math:`(s_h, s_w)`, ``rotate`` (radians)."""

    families: tuple[str, ...]
    family: torch.Tensor
    image_size: tuple[int, int]
    cutout_size: tuple[int, int]
    brightness: torch.Tensor
    saturation: torch.Tensor
    contrast: torch.Tensor
    shift: torch.Tensor
    cutout: torch.Tensor
    flip: torch.Tensor
    scale: torch.Tensor
    rotate: torch.Tensor

    @property
    def groups(self) -> int:
        return self.family.shape[0]

    @property
    def per_group(self) -> int:
        """``P``: 1 if a group's images share their parameters, else the images per group."""
        return self.brightness.shape[1]


def _side(size: int, ratio: float) -> int:
    """``int(size * ratio + 0.5)``: the reference's rounding of crop shifts and cutout sides."""
    return int(size * ratio + 0.5)


def sample(cfg: DSAConfig, groups: int, *, per_group: int = 1, generator: torch.Generator,
           image_size: tuple[int, int]) -> DSAParams:
    """Draw one family per group (``G``) and every op's parameters on the CPU from ``generator``;
    ``per_group`` 1 shares a transform across a group's images, ``N`` gives each its own."""
    if generator.device.type != "cpu":
        raise ValueError(f"DSA parameters are drawn on the CPU; got a generator on {generator.device}")
    if groups < 1 or per_group < 1:
        raise ValueError(f"groups and per_group must be >= 1, got {groups} and {per_group}")
    h, w = (int(s) for s in image_size)
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {tuple(image_size)}")
    families = cfg.families
    g, shape = generator, (groups, per_group)

    def uniform(lo: float, hi: float, size: tuple[int, ...] = shape) -> torch.Tensor:
        return torch.rand(size, generator=g) * (hi - lo) + lo

    def integers(lo: tuple[int, int], hi: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:  # [lo, hi) per axis
        return torch.randint(lo[0], hi[0], shape, generator=g), torch.randint(lo[1], hi[1], shape, generator=g)

    family = (torch.randint(0, len(families), (groups,), generator=g) if families
              else torch.full((groups,), -1, dtype=torch.long))
    brightness = uniform(-0.5 * cfg.brightness, 0.5 * cfg.brightness)
    saturation = uniform(0.0, cfg.saturation)
    contrast = uniform(cfg.contrast, cfg.contrast + 1.0)
    sh, sw = _side(h, cfg.crop), _side(w, cfg.crop)
    shift = torch.stack(integers((-sh, -sw), (sh + 1, sw + 1)), dim=-1)
    kh, kw = _side(h, cfg.cutout), _side(w, cfg.cutout)
    cutout = torch.stack(integers((0, 0), (h + 1 - kh % 2, w + 1 - kw % 2)), dim=-1)
    flip = torch.rand(shape, generator=g) < cfg.flip
    scale = uniform(1.0 / cfg.scale, cfg.scale, (*shape, 2))
    rotate = uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180.0)
    return DSAParams(families=families, family=family, image_size=(h, w), cutout_size=(kh, kw), brightness=brightness,
                     saturation=saturation, contrast=contrast, shift=shift, cutout=cutout, flip=flip, scale=scale,
                     rotate=rotate)


# The ops: x is [g, N, C, H, W]; parameters are [g, P, ...] on x's device, P in {1, N}.

def _bcast(p: torch.Tensor) -> torch.Tensor:
    """``[g, P] -> [g, P, 1, 1, 1]`` to broadcast over ``[g, N, C, H, W]``."""
    return p[:, :, None, None, None]


def _color(x: torch.Tensor, b: torch.Tensor, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    r"""Brightness, saturation, contrast fused into one pass (:math:`\bar x_c`: channel mean, :math:`\bar x`:
    mean over C, H, W): :math:`y = c s\, x + c (1 - s)\, \bar x_c + (1 - c)\, \bar x + b`."""
    b, s, c = _bcast(b), _bcast(s), _bcast(c)
    mean_c = x.mean(dim=2, keepdim=True)  # [g, N, 1, H, W]
    mean = mean_c.mean(dim=(3, 4), keepdim=True)  # [g, N, 1, 1, 1]
    offset = (c * (1 - s)) * mean_c + ((1 - c) * mean + b)
    return torch.addcmul(offset, c * s, x)


def _crop(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    r""":math:`y_{ij} = x_{i + \delta_h, j + \delta_w}`, zero outside (shift :math:`\le \lfloor H\rho + 1/2 \rfloor`):
    an exact gather from ``x`` with a one-pixel zero border onto which out-of-range indices are clamped."""
    g, n, c, h, w = x.shape
    p = shift.shape[1]
    rows = (torch.arange(h, device=x.device) + shift[..., 0:1] + 1).clamp_(0, h + 1)  # [g, P, H]
    cols = (torch.arange(w, device=x.device) + shift[..., 1:2] + 1).clamp_(0, w + 1)  # [g, P, W]
    index = (rows[..., :, None] * (w + 2) + cols[..., None, :]).view(g, p, 1, h * w).expand(g, n, c, h * w)
    padded = F.pad(x, (1, 1, 1, 1)).flatten(-2)
    return padded.gather(-1, index).view(g, n, c, h, w)


def _cutout(x: torch.Tensor, corner: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    r"""Zero rows :math:`[a_h, a_h + k_h)` :math:`\times` columns :math:`[a_w, a_w + k_w)`, clipped to
    the image, with corner :math:`a = c - \lfloor k/2 \rfloor` (the reference's clamped index set)."""
    h, w = x.shape[-2:]
    r = torch.arange(h, device=x.device) - corner[..., 0:1]  # [g, P, H]
    q = torch.arange(w, device=x.device) - corner[..., 1:2]  # [g, P, W]
    inside = ((r >= 0) & (r < size[0]))[..., :, None] & ((q >= 0) & (q < size[1]))[..., None, :]
    return x * (~inside).to(x.dtype)[:, :, None]


def _flip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Reverse the last (width) axis where ``flip`` is true."""
    return torch.where(_bcast(flip), x.flip(-1), x)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``x [g, N, C, H, W]`` on ``affine_grid(theta [g, P, 2, 3])``, one call for all groups
    (``P = 1``: the grid is expanded to the ``N`` images, as ``grid_sample`` parallelises over image and pixel)."""
    g, n, c, h, w = x.shape
    p = theta.shape[1]
    grid = F.affine_grid(theta.reshape(g * p, 2, 3), [g * p, c, h, w], align_corners=True)
    if p != n:
        grid = grid.view(g, 1, h, w, 2).expand(g, n, h, w, 2).reshape(g * n, h, w, 2)
    out = F.grid_sample(x.reshape(g * n, c, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.view(g, n, c, h, w)


def _scale_theta(scale: torch.Tensor) -> torch.Tensor:
    r""":math:`\theta = [[s_w, 0, 0], [0, s_h, 0]]` from ``scale [g, P, 2]`` = :math:`(s_h, s_w)`."""
    (sh, sw), zero = scale.unbind(-1), scale.new_zeros(scale.shape[:2])
    return torch.stack([torch.stack([sw, zero, zero], -1), torch.stack([zero, sh, zero], -1)], -2)


def _rotate_theta(phi: torch.Tensor) -> torch.Tensor:
    r""":math:`\theta = [[\cos\phi, -\sin\phi, 0], [\sin\phi, \cos\phi, 0]]` from ``phi [g, P]``."""
    cos, sin, zero = phi.cos(), phi.sin(), torch.zeros_like(phi)
    return torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)


def _apply_family(name: str, x: torch.Tensor, params: DSAParams, groups: torch.Tensor | None) -> torch.Tensor:
    """Apply family ``name`` to ``x`` with the parameters of ``groups`` (CPU index; ``None``: all)."""

    def take(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        t = t if groups is None else t.index_select(0, groups)
        # non_blocking: a pageable host tensor is staged at once, without waiting for the GPU queue
        return t.to(device=x.device, dtype=dtype or t.dtype, non_blocking=True)

    if name == "color":
        bsc = take(torch.stack([params.brightness, params.saturation, params.contrast]).movedim(0, -1), x.dtype)
        return _color(x, bsc[..., 0], bsc[..., 1], bsc[..., 2])
    if name == "crop":
        return _crop(x, take(params.shift))
    if name == "cutout":
        kh, kw = params.cutout_size
        return _cutout(x, take(params.cutout - torch.tensor([kh // 2, kw // 2])), params.cutout_size)
    if name == "flip":
        return _flip(x, take(params.flip))
    if name == "scale":
        return _affine(x, take(_scale_theta(params.scale), x.dtype))
    if name == "rotate":
        return _affine(x, take(_rotate_theta(params.rotate.double()), x.dtype))  # cos, sin in float64
    raise ValueError(f"unknown DSA family {name!r}; known: {', '.join(FAMILIES)}")  # pragma: no cover


def apply(x: torch.Tensor, params: DSAParams) -> torch.Tensor:
    """Apply ``params`` to grouped images ``x [G, N, C, H, W]`` (differentiable in ``x``): group ``g`` goes through
    family ``params.families[params.family[g]]`` only, one batched gather/transform/scatter per family present."""
    if x.dim() != 5:
        raise ValueError(f"x must have shape [G, N, C, H, W] (5 dims), got shape {tuple(x.shape)}")
    g, n, _, h, w = x.shape
    if g != params.groups:
        raise ValueError(f"x has {g} groups but the parameters were drawn for {params.groups}")
    if (h, w) != params.image_size:
        raise ValueError(f"x is {h}x{w} but the parameters were drawn for {params.image_size}")
    if params.per_group not in (1, n):
        raise ValueError(f"parameters drawn per_group={params.per_group} cannot apply to {n} images per group")
    if not params.families:
        return x
    present = torch.bincount(params.family, minlength=len(params.families))
    if int(present.count_nonzero()) == 1:  # one family for everything: no gather / scatter
        return _apply_family(params.families[int(params.family[0])], x, params, None)
    out = torch.empty_like(x)
    for f in present.nonzero().flatten().tolist():
        groups = (params.family == f).nonzero().flatten()
        index = groups.to(x.device, non_blocking=True)
        out.index_copy_(0, index, _apply_family(params.families[f], x.index_select(0, index), params, groups))
    return out


def siamese(real: torch.Tensor, syn: torch.Tensor, cfg: DSAConfig, *,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Siamese DSA: one transform per class ``G``, the same for its real ``[G, Nr, C, H, W]`` and synthetic
    ``[G, Ns, C, H, W]`` images."""
    if real.dim() != 5 or syn.dim() != 5 or real.shape[0] != syn.shape[0] or real.shape[-2:] != syn.shape[-2:]:
        raise ValueError(
            f"real and syn must be [G, N, C, H, W] with the same G, H, W, got {tuple(real.shape)} and {tuple(syn.shape)}")
    params = sample(cfg, real.shape[0], per_group=1, generator=generator, image_size=tuple(real.shape[-2:]))
    return apply(real, params), apply(syn, params)


def augment(x: torch.Tensor, cfg: DSAConfig, *, generator: torch.Generator) -> torch.Tensor:
    """DSA for evaluation training: one family for the batch ``x [B, C, H, W]``, parameters per image."""
    if x.dim() != 4:
        raise ValueError(f"x must have shape [B, C, H, W] (4 dims), got shape {tuple(x.shape)}")
    params = sample(cfg, 1, per_group=x.shape[0], generator=generator, image_size=tuple(x.shape[-2:]))
    return apply(x.unsqueeze(0), params).squeeze(0)


def cutmix(x: torch.Tensor, p: float, *, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""CutMix (Yun et al., ICCV 2019) for groups of training images ``x [G, B, C, H, W]``: with probability ``p``
    a group gets one box of side :math:`\lfloor H\sqrt{1-\lambda}\rfloor`,
    :math:`\lambda \sim U(0, 1)` (Beta(1, 1)), centred at a uniform pixel and clipped at the border,
    pasted from a random permutation ``perm`` of its batch. Returns ``(mixed, perm [G, B], keep [G])``,
    ``keep`` the unpasted area fraction (1 without a box); the loss is
    :math:`keep\,CE(y) + (1 - keep)\,CE(y_{perm})`. Draws only from the CPU ``generator``."""
    g, b, _, h, w = x.shape
    on, lam, cy, cx = (torch.rand(g, generator=generator) for _ in range(4))
    cut = (1 - lam).sqrt() * (on < p)
    (y0, y1), (x0, x1) = (((c * n).long() - (n * cut).long() // 2, (c * n).long() + (n * cut).long() // 2)
                          for c, n in ((cy, h), (cx, w)))
    rows, cols = torch.arange(h), torch.arange(w)
    box = ((rows >= y0[:, None]) & (rows < y1[:, None]))[:, :, None] & ((cols >= x0[:, None]) & (cols < x1[:, None]))[:, None]
    perm = torch.rand(g, b, generator=generator).argsort(1)
    keep = 1 - box.flatten(1).double().mean(1)
    pasted = x[torch.arange(g)[:, None], perm.to(x.device)]
    return torch.where(box.to(x.device)[:, None, None], pasted, x), perm, keep.to(x.device, x.dtype)
