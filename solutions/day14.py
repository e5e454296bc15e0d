"""Day 14: solutions, and wrong answers the checkers must reject."""

import math

import torch


# day14.ex1 ------------------------------------------------------------------------------
def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One GRU step with torch's layout (rows: reset, update, candidate): (B, D), (B, H) -> (B, H)."""
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)  # 3 x (B, H)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)  # 3 x (B, H)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def my_bigru(x, fwd, bwd):
    """A bidirectional GRU over x (B, T, D): outputs (B, T, 2H), forward states then backward, and h_n (2, B, H)."""
    B, T, _ = x.shape
    H = fwd[1].shape[1]  # weight_hh is (3H, H)
    h_f, h_b = x.new_zeros(B, H), x.new_zeros(B, H)
    states_f, states_b = [], [None] * T
    for t in range(T):  # left to right
        h_f = gru_step(x[:, t], h_f, *fwd)
        states_f.append(h_f)
    for t in reversed(range(T)):  # right to left; the state at t has read x_t ... x_T
        h_b = gru_step(x[:, t], h_b, *bwd)
        states_b[t] = h_b
    outputs = torch.cat([torch.stack(states_f, dim=1), torch.stack(states_b, dim=1)], dim=-1)  # (B, T, 2H)
    return outputs, torch.stack([h_f, h_b])  # h_n: the last state of each direction


# day14.ex2 ------------------------------------------------------------------------------
def beam_search(next_log_probs, start_id, end_id, beam_width, max_len):
    """The most probable output found keeping the beam_width best prefixes at each step: (ids, total log-prob)."""
    beams, finished = [([start_id], 0.0)], []  # (prefix, score)
    for _ in range(max_len):
        candidates = []
        for prefix, score in beams:
            lp = next_log_probs(prefix)  # (V,)
            candidates += [(prefix + [v], score + float(lp[v])) for v in range(len(lp))]
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for prefix, score in candidates[:beam_width]:  # the best beam_width, finished or not
            (finished if prefix[-1] == end_id else beams).append((prefix, score))
        if not beams:
            break
    best, score = max(finished + beams, key=lambda c: c[1])  # unfinished beams stopped at max_len count too
    return best[1:], score


# day14.ex3 ------------------------------------------------------------------------------
# update_gate_memory(b) for b = 0, 1, ..., 10, then in steps of 0.1 around the target:
# 0.876 at 4.0, 0.943 at 4.4, 0.953 at 4.5, 0.982 at 5.0.
UPDATE_BIAS = 4.6
# end day14.ex3

# day14.ex4 ------------------------------------------------------------------------------
# 26**12 equally likely strings: log2(26**12) = 12 log2(26) bits, about 4.7 a letter.
N_BITS = 12 * math.log2(26)  # 56.4
# end day14.ex4

SOLUTIONS = {
    "day14.ex1": my_bigru,
    "day14.ex2": beam_search,
    "day14.ex3": UPDATE_BIAS,
    "day14.ex4": N_BITS,
}


# ---------------------------------------------------------------- wrong answers
def _bigru_backward_unflipped(x, fwd, bwd):  # the backward states left in the order they were computed
    out, h_n = my_bigru(x, fwd, bwd)
    H = h_n.shape[-1]
    return torch.cat([out[..., :H], out[..., H:].flip(1)], dim=-1), h_n


def _bigru_backward_reads_forward(x, fwd, bwd):  # the "backward" GRU also reads left to right
    out_b, h_b = my_bigru(x, bwd, bwd)
    out_f, h_f = my_bigru(x, fwd, fwd)
    H = h_f.shape[-1]
    return torch.cat([out_f[..., :H], out_b[..., :H]], dim=-1), torch.stack([h_f[0], h_b[0]])


def _bigru_h_n_first_state(x, fwd, bwd):  # h_n takes the backward states at the last position, not the first
    out, h_n = my_bigru(x, fwd, bwd)
    H = h_n.shape[-1]
    return out, torch.stack([out[:, -1, :H], out[:, -1, H:]])


def _bigru_z_swapped(x, fwd, bwd):  # h' = z n + (1 - z) h: the update gate the wrong way round
    def step(xt, h, weight_ih, weight_hh, bias_ih, bias_hh):
        i_r, i_z, i_n = (xt @ weight_ih.T + bias_ih).chunk(3, dim=-1)
        h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return z * torch.tanh(i_n + r * h_n) + (1 - z) * h

    B, T, _ = x.shape
    H = fwd[1].shape[1]
    h_f, h_b, sf, sb = x.new_zeros(B, H), x.new_zeros(B, H), [], [None] * T
    for t in range(T):
        h_f = step(x[:, t], h_f, *fwd)
        sf.append(h_f)
    for t in reversed(range(T)):
        h_b = step(x[:, t], h_b, *bwd)
        sb[t] = h_b
    return torch.cat([torch.stack(sf, 1), torch.stack(sb, 1)], -1), torch.stack([h_f, h_b])


def _beam_keeps_start(next_log_probs, start_id, end_id, beam_width, max_len):  # returns the start id too
    ids, score = beam_search(next_log_probs, start_id, end_id, beam_width, max_len)
    return [start_id] + ids, score


def _beam_product_of_probs(next_log_probs, start_id, end_id, beam_width, max_len):  # score as a probability
    ids, score = beam_search(next_log_probs, start_id, end_id, beam_width, max_len)
    return ids, math.exp(score)


def _beam_first_finished(next_log_probs, start_id, end_id, beam_width, max_len):  # stops at the first finished output
    beams = [([start_id], 0.0)]
    for _ in range(max_len):
        candidates = []
        for prefix, score in beams:
            lp = next_log_probs(prefix)
            candidates += [(prefix + [v], score + float(lp[v])) for v in range(len(lp))]
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = candidates[:beam_width]
        done = [c for c in beams if c[0][-1] == end_id]
        if done:
            return done[0][0][1:], done[0][1]
        beams = [c for c in beams if c[0][-1] != end_id]
    best = max(beams, key=lambda c: c[1])
    return best[0][1:], best[1]


def _beam_drops_unfinished(next_log_probs, start_id, end_id, beam_width, max_len):  # forgets outputs cut off at max_len
    beams, finished = [([start_id], 0.0)], []
    for _ in range(max_len):
        candidates = []
        for prefix, score in beams:
            lp = next_log_probs(prefix)
            candidates += [(prefix + [v], score + float(lp[v])) for v in range(len(lp))]
        candidates.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for prefix, score in candidates[:beam_width]:
            (finished if prefix[-1] == end_id else beams).append((prefix, score))
        if not beams:
            break
    best, score = max(finished or beams, key=lambda c: c[1])
    return best[1:], score


def _beam_greedy(next_log_probs, start_id, end_id, beam_width, max_len):  # ignores the width
    return beam_search(next_log_probs, start_id, end_id, 1, max_len)


WRONG = {
    "day14.ex1": [_bigru_backward_unflipped, _bigru_backward_reads_forward, _bigru_h_n_first_state, _bigru_z_swapped],
    "day14.ex2": [_beam_keeps_start, _beam_product_of_probs, _beam_first_finished, _beam_drops_unfinished, _beam_greedy],
    "day14.ex3": [0.0,  # no bias: the state is overwritten
                  20.0,  # keeps it, but far from the smallest
                  4.0,  # close, but below 0.95
                  4.4],  # just short
    "day14.ex4": [12 * math.log2(27),  # counted the end marker among the letters
                  12 * math.log(26),  # nats, not bits
                  math.log2(26),  # one letter
                  "56.4"],  # a string
}
