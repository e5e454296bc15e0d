"""Day 6: solutions, and wrong answers the checkers must reject."""

import torch


# day06.ex1 ------------------------------------------------------------------------------
class MyAdagrad(torch.optim.Optimizer):
    """Adagrad: s_t = s_{t-1} + g_t^2 (s_0 = 0), theta_t = theta_{t-1} - lr g_t / (sqrt(s_t) + eps)."""

    def __init__(self, params, lr=0.01, eps=1e-10):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue  # a parameter that took no part in the loss
                state = self.state[p]
                if "sum" not in state:
                    state["sum"] = torch.zeros_like(p)  # s_0 = 0
                state["sum"].add_(p.grad * p.grad)  # s_t = s_{t-1} + g^2: a sum, not an average
                p -= group["lr"] * p.grad / (state["sum"].sqrt() + group["eps"])


# day06.ex2 ------------------------------------------------------------------------------
def adam_step(theta, g, m, v, t, lr, betas, eps):
    """One Adam step at step t (counting from 1): returns the new (theta, m, v)."""
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * g  # running mean of g
    v = beta2 * v + (1 - beta2) * g * g  # running mean of g^2
    m_hat = m / (1 - beta1**t)  # bias corrections: m and v start at 0
    v_hat = v / (1 - beta2**t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


# day06.ex3 ------------------------------------------------------------------------------
# Heavy ball's best settings for curvatures 1 and 50 (Polyak): lr = 4 / (sqrt(50) + 1)^2,
# momentum = ((sqrt(50) - 1) / (sqrt(50) + 1))^2; every error then shrinks by sqrt(momentum) ~ 0.75 a step.
TUNED = {"lr": 0.06, "momentum": 0.57}
# end day06.ex3

# day06.ex4 ------------------------------------------------------------------------------
SPEED = 0.01 * 3 / (1 - 0.95)  # the velocity's fixed point v = g / (1 - mu), times lr: 0.6
# end day06.ex4

SOLUTIONS = {
    "day06.ex1": MyAdagrad,
    "day06.ex2": adam_step,
    "day06.ex3": TUNED,
    "day06.ex4": SPEED,
}


# ---------------------------------------------------------------- wrong answers
class _AdagradAverage(MyAdagrad):  # RMSProp's running average instead of the sum
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p].setdefault("sum", torch.zeros_like(p))
                s.mul_(0.99).add_(0.01 * p.grad * p.grad)
                p -= group["lr"] * p.grad / (s.sqrt() + group["eps"])


class _AdagradEpsInside(MyAdagrad):  # eps under the square root
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p].setdefault("sum", torch.zeros_like(p))
                s.add_(p.grad * p.grad)
                p -= group["lr"] * p.grad / (s + group["eps"]).sqrt()


class _AdagradOneLr(MyAdagrad):  # ignores the param groups' own learning rates
    @torch.no_grad()
    def step(self):
        lr = self.defaults["lr"]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p].setdefault("sum", torch.zeros_like(p))
                s.add_(p.grad * p.grad)
                p -= lr * p.grad / (s.sqrt() + group["eps"])


class _AdagradRebinds(MyAdagrad):  # p = p - ... makes a new tensor: the parameter never moves
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p].setdefault("sum", torch.zeros_like(p))
                s.add_(p.grad * p.grad)
                p = p - group["lr"] * p.grad / (s.sqrt() + group["eps"])  # noqa: PLW2901


def _adam_no_bias_correction(theta, g, m, v, t, lr, betas, eps):
    m = betas[0] * m + (1 - betas[0]) * g
    v = betas[1] * v + (1 - betas[1]) * g * g
    return theta - lr * m / (v.sqrt() + eps), m, v


def _adam_t_off_by_one(theta, g, m, v, t, lr, betas, eps):  # corrects with t + 1
    m = betas[0] * m + (1 - betas[0]) * g
    v = betas[1] * v + (1 - betas[1]) * g * g
    return theta - lr * (m / (1 - betas[0] ** (t + 1))) / ((v / (1 - betas[1] ** (t + 1))).sqrt() + eps), m, v


def _adam_eps_inside(theta, g, m, v, t, lr, betas, eps):
    m = betas[0] * m + (1 - betas[0]) * g
    v = betas[1] * v + (1 - betas[1]) * g * g
    return theta - lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t) + eps).sqrt()), m, v


def _adam_betas_swapped(theta, g, m, v, t, lr, betas, eps):
    return adam_step(theta, g, m, v, t, lr, betas[::-1], eps)


WRONG = {
    "day06.ex1": [_AdagradAverage, _AdagradEpsInside, _AdagradOneLr, _AdagradRebinds],
    "day06.ex2": [_adam_no_bias_correction, _adam_t_off_by_one, _adam_eps_inside, _adam_betas_swapped,
                  lambda theta, g, m, v, t, lr, betas, eps: (theta - lr * g, m, v)],  # plain SGD
    "day06.ex3": [{"lr": 0.01, "momentum": 0.9},  # the race's settings: not tuned
                  {"lr": 2 / 51, "momentum": 0.0},  # plain SGD at its best
                  {"lr": 0.06, "momentum": 0.99},  # too much momentum: slow spirals
                  {"lr": 0.1, "momentum": 0.5}],  # lr past the stability limit: diverges
    "day06.ex4": [0.01 * 3,  # plain SGD's step
                  0.01 * 3 / 0.95,  # divides by mu instead of 1 - mu
                  0.01 * 3 * (1 - 0.95),  # multiplies by 1 - mu
                  0.01 / (1 - 0.95)],  # forgets the gradient
}
