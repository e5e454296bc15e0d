"""Day 8: solutions, and wrong answers the checkers must reject."""

import torch


# day08.ex1 ------------------------------------------------------------------------------
def weight_penalty(model, l1, l2):
    """l1 * sum |w| + (l2 / 2) * sum w^2 over the weight matrices (the biases are not penalised)."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    return l1 * sum(w.abs().sum() for w in weights) + 0.5 * l2 * sum((w**2).sum() for w in weights)


# day08.ex2 ------------------------------------------------------------------------------
def early_stopping(val_losses, patience):
    """(best epoch, epochs run) for fit's rule: stop after `patience` epochs without a strictly lower loss."""
    best, best_epoch, bad_epochs = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):  # epochs count from 1, like History.epoch
        if loss < best:  # a tie is no improvement, and nan < anything is False
            best, best_epoch, bad_epochs = loss, epoch, 0
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                return best_epoch, epoch
    return best_epoch, len(val_losses)


# day08.ex3 ------------------------------------------------------------------------------
# Strong enough that L1's constant pull beats the weak data gradients of most weights, weak
# enough that it does not overrule the ones the data needs: 0.1 x 0.001 per step is far below 0.01.
L1_STRENGTH = 1e-3
# end day08.ex3

# day08.ex4 ------------------------------------------------------------------------------
DECAYED = (1 - 0.1 * 0.01) ** 100  # each step multiplies by 1 - lr * weight_decay: about 0.905
# end day08.ex4

SOLUTIONS = {
    "day08.ex1": weight_penalty,
    "day08.ex2": early_stopping,
    "day08.ex3": L1_STRENGTH,
    "day08.ex4": DECAYED,
}


# ---------------------------------------------------------------- wrong answers
def _penalty_with_biases(model, l1, l2):
    ps = list(model.parameters())
    return l1 * sum(p.abs().sum() for p in ps) + 0.5 * l2 * sum((p**2).sum() for p in ps)


def _penalty_no_half(model, l1, l2):
    ws = [p for n, p in model.named_parameters() if n.endswith("weight")]
    return l1 * sum(w.abs().sum() for w in ws) + l2 * sum((w**2).sum() for w in ws)


def _penalty_norm_not_squared(model, l1, l2):
    ws = [p for n, p in model.named_parameters() if n.endswith("weight")]
    return l1 * sum(w.abs().sum() for w in ws) + 0.5 * l2 * sum(w.norm() for w in ws)


def _penalty_item(model, l1, l2):  # the right number, detached: no gradient reaches the weights
    return torch.tensor(weight_penalty(model, l1, l2).item(), dtype=torch.float64)


def _stop_ties_improve(val_losses, patience):
    best, best_epoch, bad = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss <= best:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                return best_epoch, epoch
    return best_epoch, len(val_losses)


def _stop_one_late(val_losses, patience):  # waits patience + 1 epochs
    best, best_epoch, bad = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
            if bad > patience:
                return best_epoch, epoch
    return best_epoch, len(val_losses)


def _stop_zero_based(val_losses, patience):
    best_epoch, run = early_stopping(val_losses, patience)
    return best_epoch - 1, run


WRONG = {
    "day08.ex1": [_penalty_with_biases, _penalty_no_half, _penalty_norm_not_squared, _penalty_item],
    "day08.ex2": [_stop_ties_improve, _stop_one_late, _stop_zero_based,
                  lambda val_losses, patience: (min(range(len(val_losses)), key=val_losses.__getitem__) + 1,
                                                len(val_losses))],  # never stops
    "day08.ex3": [0.0,  # no penalty: few weights near zero
                  1e-4,  # too weak
                  1e-2,  # too strong: accuracy drops
                  3e-2],  # far too strong: every weight dies
    "day08.ex4": [1 - 100 * 0.1 * 0.01,  # the linear approximation, 0.9
                  (1 - 0.01) ** 100,  # forgets the learning rate
                  (1 - 0.1 * 0.01) ** 99,  # one step short
                  1.0],  # "no data, no change"
}
