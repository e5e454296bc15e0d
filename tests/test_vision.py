"""course_lib.vision against torch's conv2d/unfold, and hand-worked confusion matrices."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.vision import conv2d, conv_output_size, confusion_matrix, im2col, plot_confusion_matrix, show_images


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 20),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_output_size_matches_torch(size, kernel, stride, padding, dilation):
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        with pytest.raises(ValueError, match="does not fit"):
            conv_output_size(size, kernel, stride, padding, dilation)
        return
    out = F.conv2d(torch.zeros(1, 1, size, 1), torch.zeros(1, 1, kernel, 1), stride=(stride, 1),
                   padding=(padding, 0), dilation=(dilation, 1))  # fmt: skip
    assert conv_output_size(size, kernel, stride, padding, dilation) == out.shape[2]


def test_output_size_hand_examples():
    assert conv_output_size(28, 5) == 24  # LeNet's first layer without padding
    assert conv_output_size(28, 5, padding=2) == 28  # "same" padding for an odd kernel
    assert conv_output_size(28, 2, stride=2) == 14  # 2x2 max-pooling halves
    assert conv_output_size(7, 3, stride=2, padding=1) == 4  # floor(6 / 2) + 1


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [((2, 3, 7, 9), 3, 1, 0), ((1, 2, 8, 8), (2, 3), (2, 1), (1, 0)), ((3, 1, 5, 5), 5, 2, 2), ((2, 4, 6, 5), 1, 3, 1)],
)
def test_im2col_matches_unfold(shape, kernel, stride, padding):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(im2col(x, kernel, stride, padding), F.unfold(x, kernel, stride=stride, padding=padding))


def test_im2col_hand_example():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
    cols = im2col(x, 2)  # four 2x2 patches, one per column
    expected = torch.tensor([[0.0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    torch.testing.assert_close(cols[0], expected)


@pytest.mark.parametrize(
    ("n", "c", "o", "hw", "k", "stride", "padding", "use_bias"),
    [(2, 3, 4, (9, 9), (3, 3), 1, 0, True), (1, 1, 2, (8, 11), (5, 2), 2, 1, False),
     (3, 2, 5, (6, 6), (3, 3), (1, 2), (2, 0), True), (2, 6, 16, (14, 14), (5, 5), 1, 0, True)],
)  # fmt: skip
def test_conv2d_matches_torch(n, c, o, hw, k, stride, padding, use_bias):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, c, *hw, generator=g)
    w = torch.randn(o, c, *k, generator=g)
    b = torch.randn(o, generator=g) if use_bias else None
    torch.testing.assert_close(conv2d(x, w, b, stride, padding), F.conv2d(x, w, b, stride, padding))


def test_conv2d_gradients_match_torch():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 6, 6, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, generator=g, requires_grad=True)
    (conv2d(x, w, padding=1) ** 2).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad, w.grad = None, None
    (F.conv2d(x, w, padding=1) ** 2).sum().backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gw, w.grad)


def test_conv2d_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="C = weight.shape"):
        conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="bias"):
        conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(2, 3, 3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="batch of images"):
        im2col(torch.zeros(3, 5, 5), 3)


def test_confusion_matrix_hand_example():
    targets = torch.tensor([0, 0, 1, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 0])
    expected = torch.tensor([[1, 1, 0], [0, 2, 1], [1, 0, 0]])
    m = confusion_matrix(preds, targets, 3)
    assert torch.equal(m, expected)
    assert m.sum(dim=1).tolist() == [2, 3, 1]  # row sums = class sizes
    assert m.trace().item() / m.sum().item() == pytest.approx(3 / 6)  # diagonal / total = accuracy


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)
    with pytest.raises(TypeError, match="argmax"):
        confusion_matrix(torch.tensor([0.5]), torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="equal length"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)


def test_plots_return_figures():
    fig = plot_confusion_matrix(torch.eye(3, dtype=torch.long) * 5, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert sorted(t.get_text() for t in ax.texts) == ["5", "5", "5"]  # zero cells stay blank
    fig = show_images(torch.rand(5, 1, 4, 4), titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last one left empty
    assert [a.get_title() for a in fig.axes[:5]] == list("abcde")
    with pytest.raises(ValueError, match="titles"):
        show_images(torch.rand(2, 4, 4), titles=["x"])


def test_show_images_symmetric_puts_zero_in_the_middle():
    filters = torch.tensor([[[0.5, -2.0], [1.0, 0.0]]])  # (1, 2, 2) largest magnitude 2
    fig = show_images(filters, symmetric=True, cmap="RdBu_r")
    assert fig.axes[0].images[0].get_clim() == (-2.0, 2.0)
    fig = show_images(filters)
    assert fig.axes[0].images[0].get_clim() == (-2.0, 1.0)  # default: the image's own range
