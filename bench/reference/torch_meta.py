#!/usr/bin/env python3
"""@file PyTorch CPU reference column for `metagrad bench compile`: metagrad's bench workloads, same sizes and maths.

Run by hand (never by CI, no test imports it), with Debian's python3-torch and OpenBLAS:

    apt-get install -y python3-torch libopenblas0-pthread
    /usr/bin/python3 bench/reference/torch_meta.py --json

Each workload: warm-up calls, then the median of `reps` calls (time.perf_counter). Where metagrad reads a value
back to the host (a loss, a norm), this script calls .item() at the same place, so both sides pay for the same
synchronisation points. Rows: { workload, torchMs, reps, threads, torch, blas, note? }. Results are written to
bench/reference/torch_meta.<host>.json (host = --host, default the hostname).

Sources the maths was read from (keep in step when they change):
  bench/kernels.ts (add chain), bench/train.ts (MLP, LeNet-5), bench/meta.ts with
  packages/experiments/src/evograd-cost.ts + mwn-label-noise-common.ts + packages/meta/src/hypergrad/{mwn,lookahead,
  evograd,trainer}.ts (MWN), packages/experiments/src/hyperdistill-sinusoid.ts + packages/meta/src/episodic/* +
  hyperdistill/* (E5), packages/experiments/src/amaml-{common,cost}.ts + packages/meta/src/maml/* + ode/* (MAML family).
"""
import argparse
import json
import math
import os
import platform
import shlex
import socket
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------
# Timing and environment


def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def blas_library():
    """The BLAS shared object actually mapped into this process (torch 1.13 on Debian links the libblas.so.3
    alternative, so OpenBLAS vs the reference BLAS is a matter of which package is installed)."""
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if 'blas' in line.lower() and '.so' in line}
        return ', '.join(sorted(os.path.realpath(p) for p in libs)) or 'none mapped'
    except OSError:
        return 'unknown'


def matmul_gflops():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    ms = median_ms(lambda: a @ b, 5, 2)
    return 2 * 1024 ** 3 / (ms / 1000) / 1e9


def _init_linear(inp, out, gen):
    # Kaiming-uniform-like bound 1/sqrt(in) as metagrad's initLinear; values do not change cost.
    bound = 1 / math.sqrt(inp)
    w = (torch.rand(out, inp, generator=gen) * 2 - 1) * bound
    b = (torch.rand(out, generator=gen) * 2 - 1) * bound
    return [w, b]


def _init_conv(cin, cout, k, gen):
    bound = 1 / math.sqrt(cin * k * k)
    w = (torch.rand(cout, cin, k, k, generator=gen) * 2 - 1) * bound
    b = (torch.rand(cout, generator=gen) * 2 - 1) * bound
    return [w, b]


def _req(ts):
    return [t.detach().requires_grad_(True) for t in ts]


# ---------------------------------------------------------------------------------------------------------------
# bench/kernels.ts: 100 dependent adds on [1024], one readback


def add_chain():
    small = torch.randn(1024)

    def run():
        acc = small + small
        for _ in range(1, 100):
            acc = acc + small
        acc.numpy().copy()  # the readback (4 KiB)

    return run


# ---------------------------------------------------------------------------------------------------------------
# bench/train.ts: one SGD step (forward, cross-entropy, backward, update), batch 128, lr 0.01


def mlp_784_256_10():
    g = torch.Generator().manual_seed(1)
    params = _req(_init_linear(784, 256, g) + _init_linear(256, 10, g))
    x = torch.randn(128, 784)
    y = torch.randint(0, 10, (128,))

    def forward():
        w1, b1, w2, b2 = params
        return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)

    return _sgd_step(params, forward, y)


def lenet5_forward(params, x):
    c1, cb1, c2, cb2, f1, fb1, f2, fb2, f3, fb3 = params
    h = F.max_pool2d(F.relu(F.conv2d(x, c1, cb1, padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, c2, cb2)), 2)
    h = h.flatten(1)
    h = F.relu(F.linear(h, f1, fb1))
    h = F.relu(F.linear(h, f2, fb2))
    return F.linear(h, f3, fb3)


def lenet5():
    g = torch.Generator().manual_seed(1)
    params = _req(_init_conv(1, 6, 5, g) + _init_conv(6, 16, 5, g) + _init_linear(400, 120, g) + _init_linear(120, 84, g) + _init_linear(84, 10, g))
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    return _sgd_step(params, lambda: lenet5_forward(params, x), y)


def _sgd_step(params, forward, y, lr=0.01):
    def run():
        loss = F.cross_entropy(forward(), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr in zip(params, grads):
                p.sub_(gr, alpha=lr)
        params[0].reshape(-1)[0].item()  # metagrad's sync: a 4-byte read of a parameter

    return run


# ---------------------------------------------------------------------------------------------------------------
# Meta-Weight-Net (E4 / bench/meta.ts): one online iteration, meta-first (meta step on λ, then base step on θ),
# batch 64 of 14×14 inputs, θ: SGD lr 0.1 momentum 0.9, λ: Adam 1e-3, T1–T2 inner lr 0.1,
# EvoGrad Rademacher σ = 1e-3, τ = 0.05.


class MlpClassifier:
    """196-h-h-10 ReLU; `batched` runs K stacked copies ([K, out, in] weights) in one pass."""

    def __init__(self, hidden, gen):
        self.sizes = [196, hidden, hidden, 10]
        self.params = [t for i in range(3) for t in _init_linear(self.sizes[i], self.sizes[i + 1], gen)] if gen else []
        self.input_shape = (196,)

    def apply(self, p, x):
        h = x
        for i in range(3):
            h = F.linear(h, p[2 * i], p[2 * i + 1])
            if i < 2:
                h = F.relu(h)
        return h

    def batched(self, p, x):  # p leaves [K, ...]
        h = x.unsqueeze(0)  # [1, N, in] broadcast over K
        for i in range(3):
            h = torch.matmul(h, p[2 * i].transpose(1, 2)) + p[2 * i + 1].unsqueeze(1)
            if i < 2:
                h = F.relu(h)
        return h  # [K, N, C]


class CnnClassifier:
    """conv3×3(8w) → ReLU → pool2 → conv3×3(16w) → ReLU → pool2 → linear, on [1, 14, 14]; K copies via stacked
    filter banks and a grouped convolution, as mwn-label-noise-common.ts's cnnClassifier."""

    def __init__(self, width, gen):
        self.c1, self.c2 = 8 * width, 16 * width
        self.features = self.c2 * 3 * 3
        self.params = _init_conv(1, self.c1, 3, gen) + _init_conv(self.c1, self.c2, 3, gen) + _init_linear(self.features, 10, gen)
        self.input_shape = (1, 14, 14)

    def apply(self, p, x):
        h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3], padding=1)), 2)
        return F.linear(h.flatten(1), p[4], p[5])

    def batched(self, p, x):
        K = p[0].shape[0]
        n = x.shape[0]
        h = F.conv2d(x, p[0].reshape(K * self.c1, 1, 3, 3), p[1].reshape(-1), padding=1)
        h = F.max_pool2d(F.relu(h), 2)
        h = F.conv2d(h, p[2].reshape(K * self.c2, self.c1, 3, 3), p[3].reshape(-1), padding=1, groups=K)
        h = F.max_pool2d(F.relu(h), 2)
        h = h.reshape(n, K, self.features).permute(1, 0, 2)  # [K, N, F]
        return torch.matmul(h, p[4].transpose(1, 2)) + p[5].reshape(K, 1, 10)


def weight_net(lam, losses):  # 1-100-1, ReLU hidden, sigmoid out
    return torch.sigmoid(F.linear(F.relu(F.linear(losses, lam[0], lam[1])), lam[2], lam[3]))


def mwn_weighted(lam, per_example):
    v = weight_net(lam, per_example.detach().reshape(-1, 1)).reshape(per_example.shape)
    return v * per_example


def mwn_train_loss(c, theta, lam, x, y):
    return mwn_weighted(lam, F.cross_entropy(c.apply(theta, x), y, reduction='none')).mean()


def t1t2_hypergrad(c, theta, lam, xt, yt, xv, yv, alpha):
    """OneStepLookahead: θ' = θ − α∇θL_T(θ, λ) with createGraph, then (L_V(θ'), dL_V(θ')/dλ)."""
    loss_t = mwn_train_loss(c, theta, lam, xt, yt)
    g = torch.autograd.grad(loss_t, theta, create_graph=True)
    look = [t - alpha * gi for t, gi in zip(theta, g)]
    loss_v = F.cross_entropy(c.apply(look, xv), yv)
    return loss_v, torch.autograd.grad(loss_v, lam)


def check_mwn_t1t2():
    """T1–T2 on metagrad's exported small MWN problem (mwn_check.json): validation loss and hypergradient."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mwn_check.json')) as f:
        d = json.load(f)
    t = lambda e, dtype=torch.float32: torch.tensor(e['data'], dtype=dtype).reshape(e['shape'])
    c = MlpClassifier(d['theta']['0.weight']['shape'][0], None)
    theta = _req([t(d['theta'][k]) for k in ['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']])
    names = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    lam = _req([t(d['lambda'][k]) for k in names])
    loss_v, hyper = t1t2_hypergrad(c, theta, lam, t(d['train']['x']), t(d['train']['y'], torch.long), t(d['val']['x']), t(d['val']['y'], torch.long), 0.1)
    got = torch.cat([h.reshape(-1) for h in hyper])
    ref = torch.cat([t(d['metagrad']['hypergrad'][k]).reshape(-1) for k in names])
    return {'valLoss': loss_v.item(), 'metagradValLoss': d['metagrad']['valLoss'], 'hypergradRelErrVsMetagrad': float((got - ref).norm() / ref.norm())}


def mwn_step(classifier, method):
    gen = torch.Generator().manual_seed(1)
    c = classifier(gen)
    theta = _req(c.params)
    lam = _req(_init_linear(1, 100, gen) + _init_linear(100, 1, gen))
    xt, yt = torch.rand(64, *c.input_shape), torch.randint(0, 10, (64,))
    xv, yv = torch.rand(64, *c.input_shape), torch.randint(0, 10, (64,))
    opt_theta = torch.optim.SGD(theta, lr=0.1, momentum=0.9)
    opt_lam = torch.optim.Adam(lam, lr=1e-3)
    alpha, sigma, tau = 0.1, 1e-3, 0.05
    K = {'evograd-k2': 2, 'evograd-k4': 4}.get(method)

    def meta_t1t2():
        return t1t2_hypergrad(c, theta, lam, xt, yt, xv, yv, alpha)

    def meta_evograd():
        th = [t.detach() for t in theta]
        eps = [(torch.randint(0, 2, (K, *t.shape), dtype=torch.float32) * 2 - 1) * sigma for t in th]
        copies = [t.unsqueeze(0) + e for t, e in zip(th, eps)]
        logits = c.batched(copies, xt)  # [K, N, C]
        per_example = -(F.log_softmax(logits, 2) * F.one_hot(yt, 10).float()).sum(2)  # [K, N]
        losses = mwn_weighted(lam, per_example).mean(1)  # [K]
        w = torch.softmax(-losses / tau, 0).reshape(1, K)
        star = [t + (w @ e.reshape(K, -1)).reshape(t.shape) for t, e in zip(th, eps)]
        loss_v = F.cross_entropy(c.apply(star, xv), yv)
        return loss_v, torch.autograd.grad(loss_v, lam)

    meta = {'t1-t2': meta_t1t2, 'evograd-k2': meta_evograd, 'evograd-k4': meta_evograd}.get(method)

    def run():
        if meta:
            loss_v, hyper = meta()
            loss_v.item()  # finishResult's readback of the validation loss
            torch.sqrt(sum((h * h).sum() for h in hyper)).item()  # the trainer's ‖hypergradient‖ readback
            for p, h in zip(lam, hyper):
                p.grad = h
            opt_lam.step()
        # Base step: exact ∇θ L_T with λ constant; loss and ‖g‖ read back together (readWithNorm), then SGD.
        lam_c = [l.detach() for l in lam]
        loss_t = mwn_train_loss(c, theta, lam_c, xt, yt)
        g = torch.autograd.grad(loss_t, theta)
        torch.stack([loss_t.detach(), torch.sqrt(sum((gi * gi).sum() for gi in g))]).tolist()
        for p, gi in zip(theta, g):
            p.grad = gi
        opt_theta.step()

    return run


# ---------------------------------------------------------------------------------------------------------------
# E5 (hyperdistill-sinusoid.ts, E5_FULL): ANIL on sinusoids, features 1-100-100-100 (ReLU after every layer) are λ,
# a per-task linear head w ([10, 100, 1], [10, 1, 1]) adapts; meta-batch 10, 10 shots, T = 30 steps of heavy-ball
# SGD (lr 0.01, μ 0.9, torch convention), λ updated online by Adam 1e-3 after every step, then Reptile η = 1 on φ.
# One timed call = one inner optimisation with its hypergradients (metagrad's EpisodicTrainer.runEpisode).


def e5_episode(method, T=30, tasks=10, shots=10, hidden=100, given=None):
    """`given`: λ, φ and the episode's data (the check against metagrad's export); else random ones."""
    gen = torch.Generator().manual_seed(1)
    lam = _req(_init_linear(1, hidden, gen) + _init_linear(hidden, hidden, gen) + _init_linear(hidden, hidden, gen))
    bound = 1 / math.sqrt(hidden)
    phi = [(torch.rand(1, hidden, 1, generator=gen) * 2 - 1) * bound, (torch.rand(1, 1, 1, generator=gen) * 2 - 1) * bound]
    amp = torch.rand(tasks, 1, 1) * 4.9 + 0.1
    phase = torch.rand(tasks, 1, 1) * math.pi
    xs, xq = torch.rand(tasks, shots, 1) * 10 - 5, torch.rand(tasks, shots, 1) * 10 - 5
    ys, yq = amp * torch.sin(xs - phase), amp * torch.sin(xq - phase)
    if given:
        lam, phi, (xs, ys, xq, yq) = _req(given['lambda']), given['phi'], given['data']
        tasks, shots, hidden = xs.shape[0], xs.shape[1], lam[0].shape[0]
    adam = torch.optim.Adam(lam, lr=1e-3)
    lr, mu, gamma = 0.01, 0.9, {'hd0.99': 0.99}.get(method, 0.0)

    def predict(w, lm, x):
        B, n, d = x.shape
        f = x.reshape(B * n, d)
        for i in range(3):
            f = F.relu(F.linear(f, lm[2 * i], lm[2 * i + 1]))
        return torch.matmul(f.reshape(B, n, hidden), w[0]) + w[1]

    def train_loss(w, lm, x, y):  # Σ_tasks mean_examples (pred − y)²
        return ((predict(w, lm, x) - y) ** 2).sum() / x.shape[1]

    def val_loss(w, lm):
        return train_loss(w, lm, xq, yq) / tasks

    def apply_hyper(loss, hyper):
        # finishCheckedResult: the loss and ‖hypergradient‖ in one readback, then Adam on λ.
        torch.stack([loss.detach(), torch.sqrt(sum((h * h).sum() for h in hyper))]).tolist()
        for p, h in zip(lam, hyper):
            p.grad = h
        adam.step()

    def run():
        nonlocal phi
        w = [p.expand(tasks, *p.shape[1:]).clone() for p in phi]
        buf = None
        w_star = None
        last = None
        for t in range(1, T + 1):
            lam_c = [l.detach() for l in lam]
            wg = _req(w)
            loss = train_loss(wg, lam_c, xs, ys)
            g = torch.autograd.grad(loss, wg)
            if t == T:  # trackLast: the last step's loss and ‖g‖ stay on the device for the final readback
                last = (loss.detach(), torch.sqrt(sum((gi * gi).sum() for gi in g)))
            with torch.no_grad():
                buf = list(g) if buf is None else [mu * b + gi for b, gi in zip(buf, g)]
                w_prev, w = w, [wi - lr * b for wi, b in zip(w, buf)]
            if method == 'fo':
                lv = val_loss(w, lam)
                apply_hyper(lv, torch.autograd.grad(lv, lam))
            else:  # 1-step (γ = 0, θ = 1) or HyperDistill γ = 0.99 (θ fixed: the fit is not in the timed episodes)
                p = 0.0 if t < 2 or gamma == 0 else gamma * (1 - gamma ** (t - 1)) / (1 - gamma ** t)
                w_star = [wp.clone() for wp in w_prev] if (w_star is None or t == 1 or p == 0) else [p * a + (1 - p) * b for a, b in zip(w_star, w_prev)]
                scale = 1.0 * (t if gamma == 1 else (1 - gamma ** t) / (1 - gamma))
                ws = _req(w_star)
                gs = torch.autograd.grad(train_loss(ws, lam, xs, ys), ws, create_graph=True)
                phi_t = [a - lr * b for a, b in zip(ws, gs)]
                psi = [wt + (f - f.detach()) * scale for wt, f in zip(w, phi_t)]
                lv = val_loss(psi, lam)
                apply_hyper(lv, torch.autograd.grad(lv, lam))
        # checkedValLoss: L_V(w_T), ‖w_T‖, last loss and ‖g‖ in one readback; then Reptile (η = 1): φ ← mean_tasks w_T.
        with torch.no_grad():
            lv = val_loss(w, lam)
            read = torch.stack([lv, torch.sqrt(sum((wi * wi).sum() for wi in w)), *last]).tolist()
            phi = [wi.mean(0, keepdim=True) for wi in w]
        return read[0], lam, phi

    return run


def check_e5():
    """One inner optimisation of FO and 1-step on metagrad's exported small E5 problem (e5_check.json: λ 1-16-16-16):
    the validation loss and λ, φ after it (30 Adam updates of λ, the Reptile step) against metagrad's."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'e5_check.json')) as f:
        d = json.load(f)
    t = lambda e: torch.tensor(e['data'], dtype=torch.float32).reshape(e['shape'])
    names = ['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']
    data = [t(d['support']['x']), t(d['support']['y']), t(d['query']['x']), t(d['query']['y'])]
    out = {}
    for key, method in [('fo', 'fo'), ('oneStep', '1step')]:
        ref = d[key]
        given = {'lambda': [t(ref['before']['lambda'][k]) for k in names], 'phi': [t(ref['before']['phi'][k]) for k in ['weight', 'bias']], 'data': data}
        val, lam, phi = e5_episode(method, given=given)()
        got = torch.cat([x.detach().reshape(-1) for x in lam + phi])
        want = torch.cat([t(ref['after']['lambda'][k]).reshape(-1) for k in names] + [t(ref['after']['phi'][k]).reshape(-1) for k in ['weight', 'bias']])
        moved = torch.cat([x.reshape(-1) for x in given['lambda'] + given['phi']])
        out[key] = {'valLoss': val, 'metagradValLoss': ref['valLoss'],
                    'stateRelErrVsMetagrad': float((got - want).norm() / (want - moved).norm())}
    return out


# ---------------------------------------------------------------------------------------------------------------
# E8 / bench/meta.ts init rows: one meta-gradient on a tanh 2-32-32-1 regressor, one task with 100 support and
# 100 query points, inner GD lr 0.01 for 100 steps, MSE losses.


TASK_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'amaml_task.json')


def regression_task(_gen=None):
    """The exact task and θ of packages/experiments/src/amaml-cost.ts, exported from metagrad (amaml_task.json; see
    README.md here), so the step counts of A-MAML's adaptive solver and the results can be compared with metagrad's."""
    with open(TASK_FILE) as f:
        d = json.load(f)
    t = lambda e: torch.tensor(e['data'], dtype=torch.float32).reshape(e['shape'])
    theta = [t(e) for e in d['theta']]
    return theta, [t(d['support']['x']), t(d['support']['y']), t(d['query']['x']), t(d['query']['y'])]


def tanh_mlp(p, x):
    h = torch.tanh(F.linear(x, p[0], p[1]))
    h = torch.tanh(F.linear(h, p[2], p[3]))
    return F.linear(h, p[4], p[5])


def mse(p, x, y):
    return ((tanh_mlp(p, x) - y) ** 2).mean()


def maml(steps=100, lr=0.01):
    theta, (xs, ys, xq, yq) = regression_task()

    def run():
        th = _req(theta)
        u = th
        for _ in range(steps):
            g = torch.autograd.grad(mse(u, xs, ys), u, create_graph=True)
            u = [a - lr * b for a, b in zip(u, g)]
        J = mse(u, xq, yq)
        g = torch.autograd.grad(J, th)
        return J.item(), torch.cat([x.reshape(-1) for x in g])

    return run


def fomaml(steps=100, lr=0.01):
    theta, (xs, ys, xq, yq) = regression_task()

    def grad_at(u, x, y):
        ul = _req(u)
        return torch.autograd.grad(mse(ul, x, y), ul)

    def run():
        u = theta
        for _ in range(steps):
            g = grad_at(u, xs, ys)
            with torch.no_grad():
                u = [a - lr * b for a, b in zip(u, g)]
        g = grad_at(u, xq, yq)  # the meta-gradient ∇J(u_n)
        with torch.no_grad():
            return mse(u, xq, yq).item(), torch.cat([x.reshape(-1) for x in g])  # evalLoss: the outer loss, read back

    return run


# ---------------------------------------------------------------------------------------------------------------
# A-MAML (packages/meta/src/maml/adjoint-maml.ts): gradient flow du/dt = −∇L(u) over T = steps·lr, solved by
# dopri5 (rtol 1e-5, atol 1e-6, max-norm error, Hairer's first step, safety 0.9, factors 0.2…10, steps at most h)
# with the states taken on the grid t_k = k·h by its dense output; then λ(T) = ∇J(u_T) and Heun backward over the
# states, dλ/dt = H(u)λ, each state's gradient graph built once and used for both of its HVPs; dJ/dθ = λ(0).
# Flat parameter vector, as metagrad's default `flatten`.

_A = [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9], [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
      [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656], [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]]
_C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
_B = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]
_E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]  # b − b̂
# Dense output (Hairer's contd5 coefficients for the 4th-order interpolant).
_D = [-12715105075 / 11282082432, 0, 87487479700 / 32700410799, -10690763975 / 1880347072, 701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423]


def amaml(steps=100, lr=0.01, rtol=1e-5, atol=1e-6):
    theta, (xs, ys, xq, yq) = regression_task()
    shapes = [t.shape for t in theta]
    sizes = [t.numel() for t in theta]
    T = steps * lr
    stats = {}

    def unflat(v):
        return [c.reshape(s) for c, s in zip(torch.split(v, sizes), shapes)]

    def loss(v, x, y):
        return mse(unflat(v), x, y)

    def f(u):  # −∇L(u)
        ul = u.detach().requires_grad_(True)
        return -torch.autograd.grad(loss(ul, xs, ys), ul)[0]

    def scaled_error(v, y0, y1):  # max-norm of v / (atol + rtol·max(|y0|, |y1|)), read back (as metagrad's)
        return (v.abs() / (atol + rtol * torch.maximum(y0.abs(), y1.abs()))).max().item()

    def dopri5_grid(y0):
        ts = [k * lr for k in range(steps + 1)]
        ys = [y0]
        t, y = 0.0, y0
        k1 = f(y)
        nfe = 1
        # Hairer's first step (hinit), bounded by the span.
        d0, d1 = scaled_error(y, y, y), scaled_error(k1, y, y)
        h0 = min(1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1, T)
        f1 = f(y + h0 * k1)
        nfe += 1
        d2 = scaled_error(f1 - k1, y, y) / h0
        der = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if der <= 1e-15 else (0.01 / der) ** (1 / 5)
        h = min(100 * h0, h1, T)
        nxt, rejected, accepted = 1, False, 0
        while t < T:
            proposed = h
            last = t + 1.01 * proposed >= T  # Hairer's 1.01 rule: stretch onto the end
            h = T - t if last else proposed
            t_new = T if last else t + h
            k = [k1]
            for i in range(1, 7):
                k.append(f(y + h * sum(a * kk for a, kk in zip(_A[i], k) if a != 0)))
            nfe += 6
            y_new = y + h * sum(b * kk for b, kk in zip(_B, k) if b != 0)
            err = scaled_error(h * sum(e * kk for e, kk in zip(_E, k) if e != 0), y, y_new)
            if err <= 1:
                while nxt <= steps and ts[nxt] <= t_new:  # states on the grid: dense output (exact at step ends)
                    ys.append(y_new if ts[nxt] == t_new else _dense(y, y_new, k, h, (ts[nxt] - t) / h))
                    nxt += 1
                fac = 10.0 if err == 0 else min(10.0, max(0.2, 0.9 * err ** -0.2))
                if rejected:
                    fac = min(fac, 1.0)
                t, y, k1 = t_new, y_new, k[6]
                h = max(h * fac, proposed) if last else h * fac
                rejected = False
                accepted += 1
            else:
                h = h * max(0.2, 0.9 * err ** -0.2)
                rejected = True
        while len(ys) < steps + 1:  # the grid's last time is T itself (rounding)
            ys.append(y)
        stats['nfe'], stats['steps'] = nfe, accepted
        return ys

    def run():
        u0 = torch.cat([t.reshape(-1) for t in theta])
        states = dopri5_grid(u0)
        uT = states[-1].detach().requires_grad_(True)
        lam = torch.autograd.grad(loss(uT, xq, yq), uT)[0]
        with torch.no_grad():
            outer = loss(states[-1], xq, yq).item()  # evalLoss readback

        def hvp_op(u):
            ul = u.detach().requires_grad_(True)
            g = torch.autograd.grad(loss(ul, xs, ys), ul, create_graph=True)[0]
            return lambda v: torch.autograd.grad(g, ul, v, retain_graph=True)[0]

        H_next = hvp_op(states[steps])
        for j in range(steps - 1, -1, -1):
            # Heun backward with g(u, λ) = (∂f/∂u)ᵀλ = −H(u)λ: λ̃_j = λ_{j+1} + h·g(u_{j+1}, λ_{j+1}),
            # λ_j = λ_{j+1} + h/2·[g(u_{j+1}, λ_{j+1}) + g(u_j, λ̃_j)].
            a = -H_next(lam)
            lam_tilde = lam + lr * a
            H_j = hvp_op(states[j])
            lam = lam + lr / 2 * (a - H_j(lam_tilde))
            H_next = H_j
        lam.sum().item()
        return outer, lam

    run.stats = stats
    return run


def _dense(y0, y1, k, h, s):
    """Dormand–Prince 4th-order dense output at y0 + s·h (Hairer's contd5)."""
    dy = y1 - y0
    bspl = h * k[0] - dy
    r1, r2, r3 = y0, dy, bspl
    r4 = dy - h * k[6] - bspl
    r5 = h * sum(d * kk for d, kk in zip(_D, k) if d != 0)
    s1 = 1 - s
    return r1 + s * (r2 + s1 * (r3 + s * (r4 + s1 * r5)))


# ---------------------------------------------------------------------------------------------------------------

WORKLOADS = [
    # (workload name as in metagrad's benches, factory, calls per round, note)
    ('add chain 100 x [1024], 1 readback', add_chain, 20, None),
    ('train step MLP 784-256-10, batch 128', mlp_784_256_10, 2, None),
    ('train step LeNet-5, batch 128', lenet5, 2,
     'NCHW, padding 2 on conv1 as metagrad lenet5(); torch F.cross_entropy and autograd.grad, in-place SGD'),
    ('MWN + mlp 256 plain', lambda: mwn_step(lambda g: MlpClassifier(256, g), 'plain'), 1, None),
    ('MWN + mlp 256 t1-t2', lambda: mwn_step(lambda g: MlpClassifier(256, g), 't1-t2'), 1, None),
    ('MWN + mlp 256 evograd-k2', lambda: mwn_step(lambda g: MlpClassifier(256, g), 'evograd-k2'), 1, None),
    ('MWN + mlp 256 evograd-k4', lambda: mwn_step(lambda g: MlpClassifier(256, g), 'evograd-k4'), 1, None),
    ('MWN + cnn ×1 plain', lambda: mwn_step(lambda g: CnnClassifier(1, g), 'plain'), 1, None),
    ('MWN + cnn ×1 t1-t2', lambda: mwn_step(lambda g: CnnClassifier(1, g), 't1-t2'), 1, None),
    ('MWN + cnn ×1 evograd-k2', lambda: mwn_step(lambda g: CnnClassifier(1, g), 'evograd-k2'), 1, None),
    ('MWN + cnn ×1 evograd-k4', lambda: mwn_step(lambda g: CnnClassifier(1, g), 'evograd-k4'), 1, None),
    ('MWN + cnn ×4 plain', lambda: mwn_step(lambda g: CnnClassifier(4, g), 'plain'), 1, None),
    ('MWN + cnn ×4 t1-t2', lambda: mwn_step(lambda g: CnnClassifier(4, g), 't1-t2'), 1, None),
    ('MWN + cnn ×4 evograd-k2', lambda: mwn_step(lambda g: CnnClassifier(4, g), 'evograd-k2'), 1, None),
    ('MWN + cnn ×4 evograd-k4', lambda: mwn_step(lambda g: CnnClassifier(4, g), 'evograd-k4'), 1, None),
    ('E5 ANIL 1-100×3-1, T=30 FO', lambda: e5_episode('fo'), 1, None),
    ('E5 ANIL 1-100×3-1, T=30 1-step', lambda: e5_episode('1step'), 1, None),
    ('E5 ANIL 1-100×3-1, T=30 HyperDistill γ=0.99', lambda: e5_episode('hd0.99'), 15,
     'online steps only with θ fixed at 1: LinearEstimation refits θ at inner optimisations 1, 51, …, none of which '
     'metagrad times (its warm-up round is m = 1); the distilled batch D* is the support set (every D_t is the same)'),
    ('tanh 2-32-32-1, 100 inner steps MAML', maml, 1, 'metagrad reports the best of 2 calls (torchMinMs is the like)'),
    ('tanh 2-32-32-1, 100 inner steps FOMAML', fomaml, 1, 'metagrad reports the best of 2 calls (torchMinMs is the like)'),
    ('tanh 2-32-32-1, 100 inner steps A-MAML', amaml, 1,
     "a re-implementation of metagrad's dopri5 (its controller, first step and max-norm error, read back every step) "
     'with dense output onto the grid and the Heun adjoint over 101 HVP graphs; same f evaluations as metagrad (see '
     'check); metagrad reports the best of 2 calls'),
]

COMMON_NOTES = {
    'MWN': 'one online iteration: meta step (hypergradient, loss and ‖hypergradient‖ read back, Adam on λ) then base '
           'step (loss and ‖∇θ‖ read back, SGD momentum on θ); batch 64 of random 14×14 inputs; torch.optim optimisers',
    'E5': 'one inner optimisation (30 SGD-momentum steps, λ updated by Adam after each, Reptile at the end) with '
          'metagrad\'s readbacks (loss + ‖hypergradient‖ per update, 4 scalars at the end); random sinusoid tasks',
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--json', action='store_true', help='print the result as JSON (default: a markdown table)')
    ap.add_argument('--threads', default='2', help='torch thread counts, comma-separated (e.g. 2,1: both, interleaved)')
    ap.add_argument('--rounds', type=int, default=25, help='interleaved rounds (samples per workload = rounds × per_round)')
    ap.add_argument('--host', default=None, help='name in the output file (default: the hostname, or cpu)')
    ap.add_argument('--only', default=None, help='run only workloads whose name contains this')
    ap.add_argument('--machine', default=None, help='a description of the machine, stored in the JSON')
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(',')]
    torch.set_num_threads(thread_counts[0])
    torch.manual_seed(0)
    load_before = os.getloadavg()
    blas = blas_library()
    gflops = matmul_gflops()
    common = {'torch': torch.__version__, 'blas': blas}
    chosen = [w for w in WORKLOADS if not args.only or args.only in w[0]]
    runs = [make() for _, make, _, _ in chosen]
    checks = {}
    with open(TASK_FILE) as f:
        reference = json.load(f)['metagrad']
    if any(name == 'MWN + mlp 256 t1-t2' for name, _, _, _ in chosen):
        checks['MWN + mlp 256 t1-t2'] = check_mwn_t1t2()  # the maths at a smaller width (196-16-16-10, batch 8)
    if any(name.startswith('E5') for name, _, _, _ in chosen):
        e5 = check_e5()  # the maths at a smaller width (λ 1-16-16-16), one inner optimisation
        for name, _, _, _ in chosen:
            if name.endswith(' FO') and name.startswith('E5'):
                checks[name] = e5['fo']
            elif name.endswith(' 1-step') and name.startswith('E5'):
                checks[name] = e5['oneStep']
    for (name, _, _, _), run in zip(chosen, runs):
        method = name.rsplit(' ', 1)[-1]
        if name.startswith('tanh') and method in reference:
            # Same task and θ as metagrad: the outer loss and meta-gradient must agree (float32 rounding apart).
            outer, g = run()
            ref = torch.tensor(reference[method]['gradient'])
            checks[name] = {'outerLoss': outer, 'metagradOuterLoss': reference[method]['outerLoss'],
                            'metaGradRelErrVsMetagrad': float((g - ref).norm() / ref.norm())}
            if getattr(run, 'stats', None):  # A-MAML: the adaptive solver's f evaluations
                checks[name].update({'innerGradients': run.stats['nfe'], 'metagradInnerGradients': reference[method]['innerGradients']})
    for threads in thread_counts:  # warm-up: 3 calls each
        torch.set_num_threads(threads)
        for run in runs:
            for _ in range(3):
                run()
    # Interleaved rounds: every workload is called once per round (the fast ones `per_round` times) at each thread
    # count, so a load burst on this shared machine hits all of them alike, as metagrad's benches step their methods
    # round-robin.
    samples = {(threads, i): [] for threads in thread_counts for i in range(len(chosen))}
    for _ in range(args.rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for i, ((_, _, per_round, _), run) in enumerate(zip(chosen, runs)):
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    run()
                    samples[(threads, i)].append((time.perf_counter() - t0) * 1000.0)
    rows = []
    for threads in thread_counts:
        for i, (name, _, _, note) in enumerate(chosen):
            times = samples[(threads, i)]
            ms = statistics.median(times)
            row = {'workload': name, 'torchMs': round(ms, 4), 'torchMinMs': round(min(times), 4), 'reps': len(times), 'threads': threads, **common}
            notes = [n for n in [COMMON_NOTES.get(name.split(' ')[0]), note] if n]
            if notes:
                row['note'] = '; '.join(notes)
            if name in checks:
                row['check'] = checks[name]
            rows.append(row)
            print(f'{name} [{threads} thr]: median {ms:.3f} ms, min {min(times):.3f} ms', file=sys.stderr)
    host = args.host or socket.gethostname() or 'cpu'
    result = {
        'host': host,
        'machine': args.machine or f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores',
        'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'python': platform.python_version(),
        'matmul1024GflopsPerS': round(gflops, 1),
        # The machine is shared: the 1-minute load average before and after (2 cores), and the rounds run.
        'loadAverage1m': [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        'rounds': args.rounds,
        'command': shlex.join([sys.executable] + sys.argv),
        'rows': rows,
    }
    if not args.only:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), f'torch_meta.{host}.json')
        with open(out, 'w') as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
            f.write('\n')
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print('| workload | threads | PyTorch CPU ms (median) | fastest |\n|---|---:|---:|---:|')
        for r in rows:
            print(f"| {r['workload']} | {r['threads']} | {r['torchMs']:.2f} | {r['torchMinMs']:.2f} |")


if __name__ == '__main__':
    main()
