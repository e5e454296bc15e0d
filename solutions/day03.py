"""Day 3: solutions, and wrong answers the checkers must reject."""


# day03.ex1 ------------------------------------------------------------------------------
def numerical_grad(f, x, h):
    """Central differences: df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h, one coordinate at a time."""
    grads = []
    for i in range(len(x)):
        up, down = list(x), list(x)  # copies: x itself is left as it was
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


# day03.ex2 ------------------------------------------------------------------------------
# With u = ab + b = -3: dg/du = 2u = -6, du/da = b = -1, du/db = a + 1 = 3.
CHAIN_RULE = (6.0, -18.0)  # (dg/da, dg/db)
# end of day03.ex2


# day03.ex3 ------------------------------------------------------------------------------
def value_backward(root):
    """Fill .grad of every Value that root depends on: reverse topological order, upstream x local."""
    order, seen = [], set()

    def visit(v):
        if id(v) not in seen:
            seen.add(id(v))
            for child in v._prev:
                visit(child)
            order.append(v)  # after all of its inputs

    visit(root)
    root.grad = 1.0  # d(root)/d(root)
    for v in reversed(order):  # every user of v has passed its share on before v does
        for child, local in zip(v._prev, v._local):
            child.grad += local * v.grad  # += : a value used twice collects both paths


# day03.ex4 ------------------------------------------------------------------------------
XOR_LR = 0.5

SOLUTIONS = {
    "day03.ex1": numerical_grad,
    "day03.ex2": CHAIN_RULE,
    "day03.ex3": value_backward,
    "day03.ex4": XOR_LR,
}


# ---------------------------------------------------------------- wrong answers
def _forward_difference(f, x, h):  # one-sided: accurate only to about h
    grads = []
    for i in range(len(x)):
        up = list(x)
        up[i] += h
        grads.append((f(up) - f(x)) / h)
    return grads


def _divides_by_h(f, x, h):  # central difference over h instead of 2h: twice the slope
    grads = []
    for i in range(len(x)):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / h)
    return grads


def _nudges_in_place(f, x, h):  # moves x itself and never puts it back
    grads = []
    for i in range(len(x)):
        x[i] += h
        f_up = f(x)
        x[i] -= 2 * h
        grads.append((f_up - f(x)) / (2 * h))
    return grads


def _all_at_once(f, x, h):  # nudges every coordinate together: a directional derivative
    up, down = [v + h for v in x], [v - h for v in x]
    return [(f(up) - f(down)) / (2 * h)] * len(x)


def _topological(root):
    order, seen = [], set()

    def visit(v):
        if id(v) not in seen:
            seen.add(id(v))
            for child in v._prev:
                visit(child)
            order.append(v)

    visit(root)
    return order


def _backward_overwrites(root):  # = instead of +=: a value used twice keeps only its last path
    root.grad = 1.0
    for v in reversed(_topological(root)):
        for child, local in zip(v._prev, v._local):
            child.grad = local * v.grad


def _backward_wrong_order(root):  # inputs before their users: gradients passed on before they arrive
    root.grad = 1.0
    for v in _topological(root):
        for child, local in zip(v._prev, v._local):
            child.grad += local * v.grad


def _backward_unseeded(root):  # forgets d(root)/d(root) = 1: every gradient stays 0
    for v in reversed(_topological(root)):
        for child, local in zip(v._prev, v._local):
            child.grad += local * v.grad


def _backward_one_level(root):  # only the root's own inputs
    root.grad = 1.0
    for child, local in zip(root._prev, root._local):
        child.grad += local * root.grad


WRONG = {
    "day03.ex1": [_forward_difference, _divides_by_h, _nudges_in_place, _all_at_once],
    "day03.ex2": [(-18.0, 6.0),  # swapped
                  (3.0, -9.0),  # the 2 of d(u^2)/du forgotten
                  (6.0, -12.0),  # du/db = a, forgetting the + b term
                  (-6.0, 18.0)],  # a sign
    "day03.ex3": [_backward_overwrites, _backward_wrong_order, _backward_unseeded, _backward_one_level],
    "day03.ex4": [0.1,  # too small: 40 steps are not enough
                  0.3,  # still too small
                  1.0,  # too large: diverges
                  -0.5],  # gradient ascent
}
