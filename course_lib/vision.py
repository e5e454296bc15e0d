"""Day 10: convolution by im2col, output sizes, and the pictures image classifiers need.

Day 10 builds a convolution from sliding dot products and then as one matrix product
(im2col); this module keeps the tested version so day 11 can check a trained network's
first layer against it. It also holds the two plots every image classifier wants:
a grid of images with titles, and a confusion matrix.

>>> conv_output_size(28, kernel_size=5, stride=1, padding=2)
28
>>> x = torch.randn(2, 3, 8, 8); w = torch.randn(4, 3, 3, 3)
>>> conv2d(x, w, stride=2, padding=1).shape            # (N, out_channels, H_out, W_out)
torch.Size([2, 4, 4, 4])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution's (or pooling's) output along one spatial dimension.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``:
    the number of positions a kernel spanning ``dilation * (kernel_size - 1) + 1`` inputs
    can take on the padded input when it moves ``stride`` at a time.

    >>> conv_output_size(32, 5), conv_output_size(7, 3, stride=2, padding=1)
    (28, 4)
    """
    for name, value, low in (("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    span = dilation * (kernel_size - 1) + 1  # inputs one kernel position covers
    if size + 2 * padding < span:
        raise ValueError(
            f"a kernel spanning {span} pixels does not fit in an input of {size} pixels with padding "
            f"{padding}: use a smaller kernel or more padding"
        )
    return (size + 2 * padding - span) // stride + 1


def im2col(x: torch.Tensor, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """Every kernel-sized patch of ``x`` as a column: (N, C, H, W) -> (N, C * kH * kW, L).

    ``L = H_out * W_out`` patches in row-major order; rows are ordered (channel, kernel
    row, kernel column), the layout of ``weight.view(out_channels, -1)``, so a convolution
    is one matrix product. Same result as ``torch.nn.functional.unfold`` (no dilation).
    It loops over the kH * kW kernel offsets only, slicing all patches at once.
    """
    if x.ndim != 4:
        raise ValueError(f"im2col needs a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    n, c, h, w = x.shape
    h_out, w_out = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    xp = torch.nn.functional.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)
    cols = x.new_empty(n, c, kh, kw, h_out, w_out)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) sees inputs i, i + sh, ... in every output position
            cols[:, :, i, j] = xp[:, :, i : i + sh * h_out : sh, j : j + sw * w_out : sw]  # (N, C, H_out, W_out)
    return cols.reshape(n, c * kh * kw, h_out * w_out)  # (N, C*kH*kW, L)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in deep learning) as im2col + one matmul.

    x (N, C, H, W), weight (O, C, kH, kW), bias (O,) or None -> (N, O, H_out, W_out).
    Matches ``torch.nn.functional.conv2d`` with ``groups=1`` and ``dilation=1``.
    """
    if weight.ndim != 4:
        raise ValueError(f"weight must be (out_channels, in_channels, kH, kW), got shape {tuple(weight.shape)}")
    if x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x must be (N, C, H, W) with C = weight.shape[1] = {weight.shape[1]}, got shape {tuple(x.shape)}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    o, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    h_out = conv_output_size(x.shape[2], kh, sh, ph)
    w_out = conv_output_size(x.shape[3], kw, sw, pw)
    cols = im2col(x, (kh, kw), (sh, sw), (ph, pw))  # (N, C*kH*kW, L)
    out = weight.reshape(o, -1) @ cols  # (O, C*kH*kW) @ (N, C*kH*kW, L) -> (N, O, L)
    if bias is not None:
        out = out + bias[:, None]  # (N, O, L)
    return out.reshape(x.shape[0], o, h_out, w_out)  # (N, O, H_out, W_out)


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes): entry [t, p] = how many of class t were predicted p.

    Rows are the true classes, so row sums are the class sizes and the diagonal over the
    total is the accuracy.

    >>> confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    tensor([[1, 0, 0],
            [0, 1, 0],
            [0, 1, 1]])
    """
    predictions, targets = torch.as_tensor(predictions), torch.as_tensor(targets)
    if predictions.shape != targets.shape or predictions.ndim != 1:
        raise ValueError(
            f"predictions and targets must be 1-D and of equal length, got {tuple(predictions.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if predictions.is_floating_point() or targets.is_floating_point():
        raise TypeError("pass integer class indices (e.g. logits.argmax(dim=1)), not scores")
    for name, t in (("predictions", predictions), ("targets", targets)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}, found {t.min().item()}..{t.max().item()}")
    flat = targets.long() * num_classes + predictions.long()  # (N,) index into the flattened matrix
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(
    matrix: torch.Tensor,
    class_names: Sequence[str] | None = None,
    ax: Any = None,
    title: str = "confusion matrix",
) -> Any:
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts; returns the Figure."""
    import matplotlib.pyplot as plt

    m = torch.as_tensor(matrix).cpu()
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {tuple(m.shape)}")
    k = m.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise ValueError(f"{k} classes but {len(names)} class names")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        plt.close(fig)  # returned, not auto-shown: a notebook displays it once
    image = ax.imshow(m.numpy(), cmap="Blues")
    threshold = m.max().item() / 2
    for t in range(k):
        for p in range(k):
            count = int(m[t, p])
            if count:
                ax.text(p, t, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > threshold else "black")  # fmt: skip
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax.figure


def show_images(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    size: float = 1.3,
    symmetric: bool = False,
    fig: Any = None,
) -> Any:
    """A grid of images (N, H, W) or (N, 1, H, W), each with an optional title; returns the Figure.

    Each image is scaled to its own range (``imshow``'s default), so raw pixels and feature
    maps both show their structure. ``symmetric=True`` scales each image to
    ``[-max|v|, max|v|]`` instead, so that zero sits in the middle of a diverging colour map
    (for filters and weights: use it with ``cmap="RdBu_r"``). ``fig``: draw into this Figure.
    """
    import matplotlib.pyplot as plt

    imgs = torch.as_tensor(images).detach().cpu()
    if imgs.ndim == 4 and imgs.shape[1] == 1:
        imgs = imgs[:, 0]  # (N, H, W)
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ValueError(f"show_images needs a non-empty batch (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(titles)} titles")
    n = len(imgs)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)  # ceil
    if fig is None:
        fig = plt.figure(figsize=(size * ncols, size * nrows + (0.25 * nrows if titles else 0)))
        plt.close(fig)  # returned, not auto-shown
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            img = imgs[k].float()
            lim = img.abs().max().item() or 1.0  # an all-zero image still gets a valid range
            extent = {"vmin": -lim, "vmax": lim} if symmetric else {}
            ax.imshow(img.numpy(), cmap=cmap, **extent)
            if titles is not None:
                ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig
