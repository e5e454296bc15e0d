"""Day 13: solutions, and wrong answers the checkers must reject."""

import torch


# day13.ex1 ------------------------------------------------------------------------------
def my_lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step, (B, D), (B, H), (B, H) -> (h, c), each (B, H); gates stacked as i, f, g, o (torch's order)."""
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g  # the additive path: forget some of the old cell, write some of the candidate
    h_new = o * torch.tanh(c_new)
    return h_new, c_new


# day13.ex2 ------------------------------------------------------------------------------
def bptt(x, h0, W_xh, W_hh, b, dL_dstates):
    """Gradients of L = sum(states * dL_dstates) for h_t = tanh(W_xh x_t + W_hh h_{t-1} + b); x (T, D), h0 (H,)."""
    hs = [h0]  # the forward pass, keeping every state
    for x_t in x:
        hs.append(torch.tanh(W_xh @ x_t + W_hh @ hs[-1] + b))  # (H,)
    dW_xh, dW_hh, db = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b)
    dh_future = torch.zeros_like(h0)  # W_hh^T delta_{t+1}: what the later steps send back
    for t in reversed(range(len(x))):
        dh = dL_dstates[t] + dh_future  # dL/dh_t: the loss at step t plus the future
        delta = dh * (1 - hs[t + 1] ** 2)  # dL/da_t, through the tanh
        dW_xh += torch.outer(delta, x[t])
        dW_hh += torch.outer(delta, hs[t])  # hs[t] is h_{t-1}
        db += delta
        dh_future = W_hh.T @ delta
    return dW_xh, dW_hh, db


# day13.ex3 ------------------------------------------------------------------------------
# grad_ratio(gain) for gains from 0.5 to 3: about 1e-9 at 1.0, 0.02 at 1.6, 0.9 at 1.8, 13 at 2.0.
GAIN = 1.8
# end day13.ex3

# day13.ex4 ------------------------------------------------------------------------------
# Four gates (i, f, g, o), each with its own W_ih (20, 10), W_hh (20, 20), bias_ih and bias_hh (20 each).
N_PARAMS = 4 * (20 * 10 + 20 * 20 + 20 + 20)  # 2560
# end day13.ex4

SOLUTIONS = {
    "day13.ex1": my_lstm_cell,
    "day13.ex2": bptt,
    "day13.ex3": GAIN,
    "day13.ex4": N_PARAMS,
}


# ---------------------------------------------------------------- wrong answers
def _lstm_ifog(x, h, c, W_ih, W_hh, b_ih, b_hh):  # gates read in the order i, f, o, g
    i, f, o, g = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def _lstm_no_tanh_on_c(x, h, c, W_ih, W_hh, b_ih, b_hh):  # h = o * c, forgetting the tanh
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * c_new, c_new


def _lstm_sigmoid_candidate(x, h, c, W_ih, W_hh, b_ih, b_hh):  # the candidate g through a sigmoid, not tanh
    i, f, g, o = torch.sigmoid(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def _lstm_forgets_everything(x, h, c, W_ih, W_hh, b_ih, b_hh):  # c = i * g: no path from the old cell
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_new = torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def _bptt_variant(future: bool = True, tanh_grad: bool = True, prev_state: bool = True):
    def bptt_wrong(x, h0, W_xh, W_hh, b, dL_dstates):
        hs = [h0]
        for x_t in x:
            hs.append(torch.tanh(W_xh @ x_t + W_hh @ hs[-1] + b))
        dW_xh, dW_hh, db = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b)
        dh_future = torch.zeros_like(h0)
        for t in reversed(range(len(x))):
            dh = dL_dstates[t] + (dh_future if future else 0)
            delta = dh * (1 - hs[t + 1] ** 2) if tanh_grad else dh
            dW_xh += torch.outer(delta, x[t])
            dW_hh += torch.outer(delta, hs[t] if prev_state else hs[t + 1])
            db += delta
            dh_future = W_hh.T @ delta
        return dW_xh, dW_hh, db

    return bptt_wrong


WRONG = {
    "day13.ex1": [_lstm_ifog, _lstm_no_tanh_on_c, _lstm_sigmoid_candidate, _lstm_forgets_everything],
    "day13.ex2": [_bptt_variant(future=False),  # only each step's own loss: no gradient from the future
                  _bptt_variant(tanh_grad=False),  # forgets the tanh's derivative 1 - h^2
                  _bptt_variant(prev_state=False),  # dW_hh from h_t instead of h_{t-1}
                  lambda x, h0, W_xh, W_hh, b, dL: (torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b))],
    "day13.ex3": [1.0,  # an orthogonal W_hh, but tanh still shrinks the gradient: it vanishes
                  1 / 64**0.5,  # the size of torch's default init: vanishes faster
                  3.0,  # too large: it explodes
                  1.5],  # closer, still a hundred times too small
    "day13.ex4": [640,  # nn.RNN's count: one gate
                  4 * (20 * 10 + 20 * 20 + 20),  # one bias per gate
                  3 * 640,  # a GRU's three gates
                  "2560"],  # a string
}
