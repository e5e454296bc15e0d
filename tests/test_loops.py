"""course_lib.loops: fit and evaluate against hand-computed softmax-regression updates."""

import copy
import math

import matplotlib
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.loops import History, accuracy, evaluate, fit

matplotlib.use("Agg")
CPU = torch.device("cpu")


def _ce_and_grads(W, b, X, y):
    """Closed-form cross-entropy of softmax(X W^T + b) and its gradients (no autograd).

    dL/dlogits = (softmax - onehot) / N, so dW = dlogits^T X and db = sum over rows.
    """
    logits = X @ W.T + b  # (N, C)
    z = logits - logits.max(dim=1, keepdim=True).values
    p = z.exp() / z.exp().sum(dim=1, keepdim=True)  # (N, C)
    n = len(y)
    loss = -(p[torch.arange(n), y].log()).mean()
    d = (p - torch.eye(W.shape[0], dtype=W.dtype)[y]) / n  # (N, C)
    return loss.item(), d.T @ X, d.sum(dim=0)


def _data(n=8, d=3, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return X, y


def _linear(d=3, c=4, seed=1):
    torch.manual_seed(seed)
    return nn.Linear(d, c).double()


def _loader(X, y, batch_size):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def test_one_epoch_full_batch_sgd_equals_the_manual_update():
    X, y = _data()
    model = _linear()
    W, b = model.weight.detach().clone(), model.bias.detach().clone()
    loss0, dW, db = _ce_and_grads(W, b, X, y)
    hist = fit(model, _loader(X, y, 8), None, epochs=1, device=CPU, progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.5))  # fmt: skip
    torch.testing.assert_close(model.weight.detach(), W - 0.5 * dW)
    torch.testing.assert_close(model.bias.detach(), b - 0.5 * db)
    assert hist.train_loss == [pytest.approx(loss0)]
    assert hist.grad_norm == [pytest.approx(torch.cat([dW.flatten(), db]).norm().item())]
    assert hist.epoch == [1] and hist.lr == [0.5]
    assert math.isnan(hist.val_loss[0]) and hist.best_epoch is None


def test_minibatches_are_sequential_updates_and_losses_are_weighted_by_batch_size():
    X, y = _data(n=7)
    model = _linear()
    W, b = model.weight.detach().clone(), model.bias.detach().clone()
    total, norms = 0.0, []
    for sl in (slice(0, 3), slice(3, 6), slice(6, 7)):  # batch_size=3 over 7 examples
        loss, dW, db = _ce_and_grads(W, b, X[sl], y[sl])
        total += loss * len(y[sl])
        norms.append(torch.cat([dW.flatten(), db]).norm().item())
        W, b = W - 0.3 * dW, b - 0.3 * db
    hist = fit(model, _loader(X, y, 3), None, epochs=1, device=CPU, progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.3))  # fmt: skip
    torch.testing.assert_close(model.weight.detach(), W)
    torch.testing.assert_close(model.bias.detach(), b)
    assert hist.train_loss[0] == pytest.approx(total / 7)
    assert hist.grad_norm[0] == pytest.approx(sum(norms) / 3)


def test_evaluate_equals_direct_computation_with_uneven_batches():
    X, y = _data(n=7)
    model = _linear()
    loss, acc = evaluate(model, _loader(X, y, 3), device=CPU)
    with torch.no_grad():
        logits = model(X)
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, y).item())
    assert acc == pytest.approx((logits.argmax(1) == y).double().mean().item())


def test_evaluate_uses_eval_mode_and_restores_the_previous_mode():
    X, y = _data(n=16)
    model = nn.Sequential(nn.Linear(3, 32), nn.Dropout(0.5), nn.Linear(32, 4)).double()
    model.train()
    loss, _ = evaluate(model, _loader(X, y, 5), device=CPU)
    assert model.training
    model.eval()
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(X), y).item()
    assert loss == pytest.approx(expected)
    evaluate(model, _loader(X, y, 5), device=CPU)
    assert not model.training


def test_train_accuracy_is_counted_before_each_update():
    X, y = _data(n=8)
    model = _linear()
    with torch.no_grad():
        expected = (model(X).argmax(1) == y).double().mean().item()
    hist = fit(model, _loader(X, y, 8), _loader(X, y, 8), epochs=1, device=CPU, progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))  # fmt: skip
    assert hist.train_acc[0] == pytest.approx(expected)
    assert (hist.val_loss[0], hist.val_acc[0]) == pytest.approx(evaluate(model, _loader(X, y, 8), device=CPU))


def test_scheduler_steps_once_per_batch_and_lr_is_recorded_at_epoch_end():
    X, y = _data(n=9)
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.8)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    hist = fit(model, _loader(X, y, 3), None, epochs=2, optimizer=opt, scheduler=sched, device=CPU, progress=False)
    assert hist.lr == pytest.approx([0.8 * 0.5**3, 0.8 * 0.5**6])


def test_grad_clip_records_the_norm_before_clipping_and_updates_with_the_clipped_gradient():
    X, y = _data()
    model = _linear()
    W, b = model.weight.detach().clone(), model.bias.detach().clone()
    _, dW, db = _ce_and_grads(W, b, X, y)
    norm = torch.cat([dW.flatten(), db]).norm().item()
    clip = norm / 4  # guarantees clipping
    hist = fit(model, _loader(X, y, 8), None, epochs=1, device=CPU, progress=False, grad_clip=clip,
               optimizer=torch.optim.SGD(model.parameters(), lr=1.0))  # fmt: skip
    assert hist.grad_norm[0] == pytest.approx(norm)
    scale = clip / (norm + 1e-6)  # clip_grad_norm_'s factor
    torch.testing.assert_close(model.weight.detach(), W - scale * dW)
    torch.testing.assert_close(model.bias.detach(), b - scale * db)


def test_regularizer_adds_to_the_gradient_but_not_to_the_recorded_loss():
    X, y = _data()
    model = _linear()
    W, b = model.weight.detach().clone(), model.bias.detach().clone()
    loss0, dW, db = _ce_and_grads(W, b, X, y)
    lam = 0.05
    hist = fit(model, _loader(X, y, 8), None, epochs=1, device=CPU, progress=False,
               regularizer=lambda m: lam * m.weight.abs().sum(),
               optimizer=torch.optim.SGD(model.parameters(), lr=0.5))  # fmt: skip
    torch.testing.assert_close(model.weight.detach(), W - 0.5 * (dW + lam * W.sign()))
    torch.testing.assert_close(model.bias.detach(), b - 0.5 * db)
    assert hist.train_loss[0] == pytest.approx(loss0)


def _manual_epochs(W, b, X, y, lr, k):
    for _ in range(k):
        _, dW, db = _ce_and_grads(W, b, X, y)
        W, b = W - lr * dW, b - lr * db
    return W, b


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    # Training labels are all 0; validation has both classes and the model starts sure of
    # class 1. Validation loss first falls (class 0 becomes likely), then rises (too likely).
    X, _ = _data(n=8, d=2, c=2)
    y_train = torch.zeros(8, dtype=torch.long)
    y_val = torch.tensor([0, 1] * 4)
    model = nn.Linear(2, 2).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 4.0]))
    W0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    hist = fit(model, _loader(X, y_train, 8), _loader(X, y_val, 8), epochs=60, device=CPU, progress=False,
               early_stopping_patience=3, optimizer=torch.optim.SGD(model.parameters(), lr=1.0))  # fmt: skip
    best = min(range(len(hist.val_loss)), key=hist.val_loss.__getitem__) + 1
    assert 1 < best == hist.best_epoch
    assert hist.stopped_early and len(hist.epoch) == best + 3
    assert all(hist.val_loss[i] < hist.val_loss[i + 1] for i in range(best - 1, best + 2))
    W, b = _manual_epochs(W0, b0, X, y_train, 1.0, best)
    torch.testing.assert_close(model.weight.detach(), W)
    torch.testing.assert_close(model.bias.detach(), b)
    assert hist.best_val_loss == pytest.approx(evaluate(model, _loader(X, y_val, 8), device=CPU)[0])


def test_without_early_stopping_all_epochs_run_and_the_last_weights_stay():
    X, y = _data()
    model = _linear()
    W, b = _manual_epochs(model.weight.detach().clone(), model.bias.detach().clone(), X, y, 0.2, 4)
    hist = fit(model, _loader(X, y, 8), _loader(X, y, 8), epochs=4, device=CPU, progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.2))  # fmt: skip
    assert hist.epoch == [1, 2, 3, 4] and not hist.stopped_early
    torch.testing.assert_close(model.weight.detach(), W)
    torch.testing.assert_close(model.bias.detach(), b)


def test_regression_loss_works_and_accuracy_is_nan():
    g = torch.Generator().manual_seed(3)
    X, Y = torch.randn(10, 3, generator=g), torch.randn(10, 2, generator=g)
    model = nn.Linear(3, 2)
    loss, acc = evaluate(model, _loader(X, Y, 4), loss_fn=nn.MSELoss(), device=CPU)
    with torch.no_grad():
        assert loss == pytest.approx(nn.functional.mse_loss(model(X), Y).item(), rel=1e-6)
    assert math.isnan(acc)
    hist = fit(model, _loader(X, Y, 4), None, epochs=1, loss_fn=nn.MSELoss(), device=CPU, progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))  # fmt: skip
    assert math.isnan(hist.train_acc[0])


def test_accuracy_on_a_hand_worked_example_and_bad_shapes():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 2])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        accuracy(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_bad_input_gets_a_clear_message():
    X, y = _data()
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = _loader(X, y, 4)
    kw = dict(device=CPU, progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, loader, None, epochs=0, optimizer=opt, **kw)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        fit(model, loader, None, epochs=1, optimizer=model.parameters(), **kw)
    with pytest.raises(ValueError, match="pass a val_loader"):
        fit(model, loader, None, epochs=1, optimizer=opt, early_stopping_patience=2, **kw)
    with pytest.raises(ValueError, match="reduction='mean'"):
        fit(model, loader, None, epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(reduction="sum"), **kw)
    with pytest.raises(ValueError, match="empty train_loader"):
        fit(model, [], None, epochs=1, optimizer=opt, **kw)
    with pytest.raises(ValueError, match="empty loader"):
        evaluate(model, [], device=CPU)
    with pytest.raises(ValueError, match="grad_clip"):
        fit(model, loader, None, epochs=1, optimizer=opt, grad_clip=0.0, **kw)


def test_history_plot_and_to_dict():
    import matplotlib.pyplot as plt

    h = History(epoch=[1, 2, 3], train_loss=[1.0, 0.6, 0.4], val_loss=[1.1, 0.8, 0.9],
                train_acc=[0.5, 0.7, 0.8], val_acc=[0.4, 0.6, 0.55], lr=[0.1] * 3,
                grad_norm=[2.0, 1.0, 0.5], best_epoch=2)  # fmt: skip
    assert h.best_val_loss == 0.8
    fig = h.plot()
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    assert [len(a.lines) >= 2 for a in fig.axes] == [True, True]
    fig2, ax = plt.subplots()
    assert h.plot(ax=ax) is fig2 and len(fig2.axes) == 2  # accuracies on a twin axis
    plt.close("all")
    d = h.to_dict()
    assert d["val_loss"] == [1.1, 0.8, 0.9] and d["best_epoch"] == 2 and d["stopped_early"] is False
    assert History(**copy.deepcopy(d)) == h
    assert "best val loss 0.8000 at epoch 2" in repr(h)
