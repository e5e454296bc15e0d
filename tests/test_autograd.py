"""The scalar autograd engine against torch.autograd (float64), on the same expressions."""

import math
import random

import matplotlib
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.autograd import MLP, Layer, Neuron, Value, draw_graph, weight_matrices

matplotlib.use("Agg")


def t(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# Each expression is written once and run on both engines: the same Python code
# works for Value (methods) and torch tensors (the same method names).
def expr_neuron(x1, x2, w1, w2, b):
    return (x1 * w1 + x2 * w2 + b).tanh()


def expr_reused(a, b, c, d, e):  # a and b feed several nodes; c**2 reuses c through pow
    f = a * b + a
    g = f * f + b / a - c**2
    return g * a + (g - d).relu() + e


def expr_all_ops(a, b, c, d, e):
    return (a.exp() + b.sigmoid() * 3.0) / (1.0 + c**2) - (d * d + 2).log() + 2.0 - e.tanh() * -a


def expr_micrograd_style(a, b, c, d, e):  # shaped like micrograd's more_ops test
    x = a + b
    y = a * b + b**3
    y = y + y + 1
    y = y + 1 + y + (-a)
    z = x + x + 1
    z = z + 1 + z + (-b)
    w = y**2 + z / 2.0 + 10.0 / z
    return w + c * d - e.relu()


EXPRESSIONS = [expr_neuron, expr_reused, expr_all_ops, expr_micrograd_style]
INPUTS = [(2.0, -1.5, -3.0, 0.8, 0.7), (-0.4, 1.3, 0.25, -2.0, -1.1), (1.7, 0.6, -1.2, 0.3, 2.2)]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("inputs", INPUTS)
def test_gradients_match_torch(expr, inputs):
    mine = [Value(x) for x in inputs]
    out = expr(*mine)
    out.backward()
    ref = [t(x) for x in inputs]
    ref_out = expr(*ref)
    ref_out.backward()
    assert out.data == pytest.approx(ref_out.item(), rel=1e-12)
    for v, r in zip(mine, ref):
        expected = 0.0 if r.grad is None else r.grad.item()
        assert v.grad == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-3, 3), b=st.floats(-3, 3).filter(lambda x: abs(x) > 0.1))
def test_binary_ops_match_torch_for_any_inputs(a, b):
    ops = [lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / y,
           lambda x, y: 2.5 - x * 3.0 / y, lambda x, y: (x * y).sigmoid() * (x - y).tanh()]
    for op in ops:
        va, vb = Value(a), Value(b)
        op(va, vb).backward()
        ta, tb = t(a), t(b)
        op(ta, tb).backward()
        assert va.grad == pytest.approx(ta.grad.item(), rel=1e-9, abs=1e-12)
        assert vb.grad == pytest.approx(tb.grad.item(), rel=1e-9, abs=1e-12)


def test_reused_node_gradients_add_up_by_hand():
    a = Value(3.0)
    c = a * a + a  # dc/da = 2a + 1 = 7
    c.backward()
    assert a.grad == 7.0
    b = Value(-2.0)
    d = b + b + b  # 3
    d.backward()
    assert b.grad == 3.0


def test_leaf_gradients_accumulate_like_torch_and_intermediates_do_not():
    a, b = Value(1.5), Value(-0.5)
    mid = a * b
    out = mid.tanh() + a
    out.backward()
    first_mid = mid.grad
    out.backward()
    ta, tb = t(1.5), t(-0.5)
    for _ in range(2):
        ((ta * tb).tanh() + ta).backward()
    assert a.grad == pytest.approx(ta.grad.item()) and b.grad == pytest.approx(tb.grad.item())
    assert mid.grad == pytest.approx(first_mid)  # recomputed, not doubled
    assert mid.grad == pytest.approx(1 - math.tanh(-0.75) ** 2)


def test_relu_gradient_at_zero_is_zero_like_torch():
    v = Value(0.0)
    v.relu().backward()
    x = t(0.0)
    torch.relu(x).backward()
    assert v.grad == x.grad.item() == 0.0


@pytest.mark.parametrize("x", [-800.0, -30.0, 0.0, 30.0, 800.0])
def test_sigmoid_is_stable_for_extreme_inputs(x):
    v = Value(x)
    s = v.sigmoid()
    s.backward()
    r = t(x)
    rs = torch.sigmoid(r)
    rs.backward()
    assert s.data == pytest.approx(rs.item(), abs=1e-15)
    assert v.grad == pytest.approx(r.grad.item(), abs=1e-15)


def test_deep_graph_needs_no_recursion():
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y + x  # y = 5001 x
    y.backward()
    assert x.grad == 5001.0


def test_repr_reads_well():
    a = Value(2.0, label="a")
    b = a * 3
    assert repr(b) == "Value(data=6.0000, grad=0.0000, op='*')"
    b.backward()
    assert repr(a) == "Value(data=2.0000, grad=3.0000, label='a')"
    assert repr(Value(-1)) == "Value(data=-1.0000, grad=0.0000)"


def test_bad_inputs_say_what_to_do():
    with pytest.raises(TypeError, match="float"):
        Value(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="float"):
        Value(True)
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
    with pytest.raises(TypeError, match="exp"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(ValueError, match="whole-number"):
        Value(-2.0) ** 0.5
    with pytest.raises(TypeError):
        Value(1.0) + "1"
    with pytest.raises(ValueError, match="inputs"):
        Neuron(3)([1.0, 2.0])
    with pytest.raises(ValueError, match="activation"):
        Layer(2, 2, activation="gelu")
    with pytest.raises(ValueError, match="positive"):
        MLP(2, [])
    with pytest.raises(ValueError, match="at least one input"):
        Neuron(0)


def _torch_copy(model: MLP, activation: type[torch.nn.Module] = torch.nn.Tanh) -> torch.nn.Sequential:
    layers = []
    for i, (w, b) in enumerate(weight_matrices(model)):
        lin = torch.nn.Linear(len(w[0]), len(w)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        layers.append(lin)
        if i < len(model.layers) - 1:
            layers.append(activation())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize(("name", "activation"), [("tanh", torch.nn.Tanh), ("relu", torch.nn.ReLU)])
def test_mlp_forward_backward_and_gradient_step_match_torch(name, activation):
    model = MLP(3, [4, 5, 1], activation=name, seed=1)
    ref = _torch_copy(model, activation)
    xs = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [-0.7, 0.9, 0.1]]
    ys = [1.0, -1.0, 0.5]
    loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    model.zero_grad()
    loss.backward()
    ref_loss = torch.nn.functional.mse_loss(ref(torch.tensor(xs, dtype=torch.float64)).squeeze(1),
                                            torch.tensor(ys, dtype=torch.float64))
    ref_loss.backward()
    assert loss.data == pytest.approx(ref_loss.item(), rel=1e-12)
    ref_params = [p for layer in ref if isinstance(layer, torch.nn.Linear) for p in (layer.weight, layer.bias)]
    mine = [[p.grad for p in n.parameters()] for layer in model.layers for n in layer.neurons]
    theirs = []
    for w, b in zip(ref_params[::2], ref_params[1::2]):
        theirs += [[*w.grad[i].tolist(), b.grad[i].item()] for i in range(w.shape[0])]
    assert len(mine) == len(theirs) == 4 + 5 + 1  # one row per neuron: its weights, then its bias
    for m, r in zip(mine, theirs):
        assert m == pytest.approx(r, rel=1e-9, abs=1e-12)
    lr = 0.1
    for p in model.parameters():
        p.data -= lr * p.grad
    with torch.no_grad():
        for q in ref.parameters():
            q -= lr * q.grad
    after = _torch_copy(model, activation)
    for p, q in zip(after.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_parameters_count_order_and_zero_grad():
    model = MLP(2, [8, 8, 1], seed=0)
    assert len(model.parameters()) == (2 * 8 + 8) + (8 * 8 + 8) + (8 * 1 + 1)
    first = model.layers[0].neurons[0]
    assert model.parameters()[:3] == [first.w[0], first.w[1], first.b]
    out = model([0.3, -0.2])
    out.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())
    assert repr(model).startswith("MLP(Layer(nin=2, nout=8, activation='tanh')")
    assert model.layers[-1].neurons[0].activation == "linear"


def test_seeded_init_is_repeatable_and_in_torch_linear_range():
    a, b = MLP(4, [16, 1], seed=3), MLP(4, [16, 1], seed=3)
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    assert [p.data for p in a.parameters()] != [p.data for p in MLP(4, [16, 1], seed=4).parameters()]
    random.seed(7)
    c = MLP(4, [16, 1])
    random.seed(7)
    assert [p.data for p in c.parameters()] == [p.data for p in MLP(4, [16, 1]).parameters()]
    random.seed(8)
    first = [p.data for p in Neuron(3).parameters()]
    random.seed(8)
    assert first == [p.data for p in Neuron(3).parameters()]  # unseeded init follows random.seed
    weights = [w.data for n in a.layers[0].neurons for w in n.w]
    assert max(abs(w) for w in weights) <= 1 / math.sqrt(4)
    assert all(n.b.data == 0.0 for n in a.layers[0].neurons)


def test_draw_graph_draws_one_box_per_value_and_one_circle_per_operation():
    import matplotlib.pyplot as plt

    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b + a  # values a, b, a*b, c; operations *, +
    c.backward()
    fig, ax = plt.subplots()
    assert draw_graph(c, ax=ax) is fig
    texts = [x.get_text() for x in ax.texts if not isinstance(x, matplotlib.text.Annotation)]
    arrows = [x for x in ax.texts if isinstance(x, matplotlib.text.Annotation)]
    assert len(arrows) == 2 + 2 + 2  # into each op from its distinct inputs, and op -> result
    assert sorted(texts) == sorted(["a = 2.0000\ngrad -2.0000", "b = -3.0000\ngrad 2.0000",
                                    "data -6.0000\ngrad 1.0000", "data -4.0000\ngrad 1.0000", "*", "+"])
    plt.close(fig)
    own = draw_graph(c)
    assert len(own.axes) == 1
    plt.close(own)
