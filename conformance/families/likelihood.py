"""Likelihood losses: Poisson and Gaussian negative log-likelihood, generalized KL divergence.

Strategies, edge tables and specs; the oracles are in ``reference/likelihood.py``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    AXIS_WHERE,
    KERAS_EPS,
    NO_REDUCTION,
    REDUCTION,
    keras_pair,
    keras_sample_weight,
    optax_axis_where,
    optax_loss,
    torch_pair,
)
from lossparity.conformance.edges import INF, NAN, edge
from lossparity.conformance.generate import FLAG, _set, arrays, batch_shapes, case_strategy, floats, pick, reductions
from lossparity.core.model import Binding, Spec
from lossparity.reference import likelihood as lk

_UNSET = "unset"


def _eps(draw, params, choices):
    value = draw(pick([_UNSET, _UNSET, *choices]))
    if value != _UNSET:
        params["eps"] = value


@case_strategy
def poisson_cases(draw):
    shape = draw(batch_shapes(min_dims=1))
    log_input = draw(pick(FLAG))
    x = draw(arrays(shape, floats(-8, 4) if log_input else floats(0, 20)))
    full = draw(pick(FLAG))
    # Integer counts or any nonnegative reals; with full=True from 1/2 up: a zero count there is
    # the edge table's (autograd of a masked Stirling term gives NaN at t = 0, a known finding).
    low = 1 if full else 0
    counts = draw(st.booleans())
    t = draw(arrays(shape, st.integers(low, 12).map(float) if counts else floats(low / 2, 12)))
    params = {"reduction": draw(reductions())}
    params["log_input"] = log_input  # always explicit: PyTorch's default is True
    _set(params, "full", full, False)
    _eps(draw, params, [1e-8, 1e-3])
    return {"input": x, "target": t}, params


@case_strategy
def gaussian_cases(draw):
    shape = draw(batch_shapes())
    x = draw(arrays(shape, floats(-10, 10)))
    t = draw(arrays(shape, floats(-10, 10)))
    kinds = ["same"] + (["fewer", "last-one"] if shape else [])
    kind = draw(pick(kinds))
    vshape = {"same": shape, "fewer": shape[:-1], "last-one": shape[:-1] + (1,)}[kind]
    v = draw(arrays(vshape, st.one_of(floats(1e-3, 4), st.sampled_from([0.0, 1e-7, 1e-6]))))
    params = {"reduction": draw(reductions())}
    _set(params, "full", draw(pick(FLAG)), False)
    _eps(draw, params, [1e-6, 1e-3])
    return {"input": x, "target": t, "var": v}, params


@case_strategy
def generalized_kl_cases(draw):
    shape = draw(batch_shapes(min_dims=1))
    # t > 0: a zero target (optax's target gradient there is NaN, a known finding) is the edge table's
    t = draw(arrays(shape, floats(0.01, 5)))
    if draw(st.booleans()):  # normalized: the plain KL divergence
        q = draw(arrays(shape, floats(0.001, 1)))
        q = q / q.sum(axis=-1, keepdims=True)
        sums = t.sum(axis=-1, keepdims=True)
        t = np.where(sums > 0, t / np.where(sums > 0, sums, 1), 1.0 / shape[-1])
        c = np.log(q)
    else:
        c = draw(arrays(shape, floats(-6, 3)))
    return {"input": c, "target": t}, {}


# fmt: off
POISSON_NLL = [
    edge("by-hand", "rates [1, 2], counts [1, 0], no eps: (1 - 1 log 1) + (2 - 0) = 3, mean 1.5",
         [1.0, 2.0], [1.0, 0.0], log_input=False, eps=0.0),
    edge("zero-count-zero-rate", "rate 0 and count 0 (probability 1, loss 0): t log(x + eps) = 0 log 0 "
                                 "with eps = 0, whose limit is 0",
         [0.0, 1.0], [0.0, 0.0], log_input=False, eps=0.0, reduction="none"),
    edge("zero-count-zero-rate-eps", "the same with each binding's default eps: 0 - 0 log(eps) = 0",
         [0.0, 1.0], [0.0, 0.0], log_input=False, reduction="none"),
    edge("zero-rate-positive-count", "rate 0 with count 2: -2 log(eps), which is where eps matters "
                                     "(torch 1e-8: 36.8, Keras 1e-7: 32.2, none: +inf)",
         [0.0, 0.5], [2.0, 1.0], log_input=False, reduction="none"),
    edge("zero-count-neg-inf-log-rate", "log rate -inf (rate 0) and count 0: exp(-inf) - 0 * (-inf), "
                                        "the limit is 0",
         [-INF, 0.0], [0.0, 0.0], log_input=True, reduction="none"),
    edge("huge-log-input", "log rates of 100 and 1e4 overflow exp (float32 at 88.7), -1e4 underflows: "
                           "the loss is +inf, +inf and 1e4 t",
         [100.0, 1e4, -1e4, 88.0], [1.0, 3.0, 2.0, 0.0], log_input=True, reduction="none"),
    edge("stirling-at-one", "full=True: the Stirling term is added for t > 1 only; t = 0, 1/2, 1 add 0, "
                            "the next float32 above 1 and 2, 5 add it",
         [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.0, 0.5, 1.0, float(np.nextafter(np.float32(1), np.float32(2))), 2.0, 5.0],
         log_input=True, full=True, reduction="none"),
    edge("stirling-rates", "full=True with rates (log_input=False) and counts around 1",
         [1.0, 3.0, 0.25], [1.0, 3.0, 7.0], log_input=False, full=True, reduction="none"),
    edge("stirling-negative-target", "a negative target with full=True: torch masks t <= 1 (adds 0), "
                                     "tf.nn masks only 0 <= t <= 1 and adds log of a negative (NaN)",
         [0.5, 0.5], [-0.5, 3.0], log_input=True, full=True, reduction="none"),
    edge("negative-rate", "a negative rate: log(x + eps) of a negative number is NaN; nothing checks",
         [-1.0, 2.0], [1.0, 1.0], log_input=False, reduction="none"),
    edge("nan-rate", "a NaN rate propagates",
         [NAN, 2.0], [1.0, 1.0], log_input=False, reduction="none"),
]
# fmt: on

# fmt: off
GAUSSIAN_NLL = [
    edge("full-constant", "mean = target, var = 1: only the constant log(2 pi) / 2 = 0.9189385332046727",
         input=[0.5, -2.0], target=[0.5, -2.0], var=[1.0, 1.0],
         full=True, reduction="none"),
    edge("zero-var", "var 0 is clamped to eps (torch 1e-6): (log eps + d^2 / eps) / 2, and its gradient "
                     "is taken at eps (torch ignores the clamp in autograd)",
         input=[1.0, 0.0], target=[0.0, 0.0], var=[0.0, 0.0], reduction="none"),
    edge("var-below-eps", "var 1e-9 < eps: clamped; the slope in var is 0 under a plain clamp",
         input=[0.002, 0.5], target=[0.0, 0.0], var=[1e-9, 0.25],
         eps=1e-6, reduction="none"),
    edge("var-at-eps", "var exactly eps = 1e-3: the clamp passes the gradient at equality",
         input=[0.01, 0.5], target=[0.0, 0.0], var=[1e-3, 0.25],
         eps=1e-3, reduction="none"),
    edge("negative-var", "a negative variance is documented to raise ValueError",
         input=[1.0, 0.0], target=[0.0, 0.0], var=[-1.0, 1.0]),
    edge("nan-var", "a NaN variance is not negative: it passes the check and the loss is NaN",
         input=[1.0, 0.0], target=[0.0, 0.0], var=[NAN, 1.0], reduction="none"),
    edge("var-one-fewer-dim", "var of shape (N,) for input (N, D): one variance per sample, unsqueezed",
         input=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]], var=[0.5, 2.0],
         reduction="none"),
    edge("var-last-dim-one", "var of shape (N, 1) for input (N, D): broadcast along D",
         input=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]], var=[[0.5], [2.0]],
         reduction="sum"),
    edge("var-first-dim-one", "var of shape (1, D) for input (N, D): one dimension equal to 1, allowed",
         input=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]], var=[[0.5, 1.0, 2.0]],
         reduction="mean"),
    edge("var-two-dims-one", "var (1, 1) for input (2, 3) broadcasts, but only one dimension of 1 is "
                             "documented: ValueError 'var is of incorrect size'",
         input=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]], var=[[0.5]]),
    edge("var-wrong-size", "var (3,) for input (2, 3) is none of the documented shapes: ValueError",
         input=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[[0.0, 2.5, 0.5], [1.0, 1.0, 1.0]], var=[0.5, 1.0, 2.0]),
    edge("scalar-var-1d", "a 0-d var for a 1-d input is the input's shape without its last dimension",
         input=[1.0, 2.0, 0.5], target=[0.0, 2.5, 0.5], var=0.5, reduction="none"),
    edge("huge-residual", "a residual of 2e4 over var 1e-6: 2e14 in the loss, past float16's range",
         input=[1e4, 0.0], target=[-1e4, 0.0], var=[1e-6, 1.0], reduction="none"),
]
# fmt: on

# fmt: off
GENERALIZED_KL_DIV = [
    edge("by-hand", "q = e, t = 1: 1 log(1 / e) - 1 + e = e - 2; t = 0: q = 1",
         [[1.0, 0.0]], [[1.0, 0.0]]),
    edge("at-minimum", "q = t: the divergence is exactly 0, and so is its slope in q",
         [[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]),
    edge("zero-target", "t = 0 contributes q (its t log term is 0)",
         [[-1.0, -0.5]], [[0.0, 1.0]]),
    edge("zero-target-neg-inf-input", "t = 0 and log q = -inf: 0 * (-inf), the limit is 0",
         [[-INF, 0.0]], [[0.0, 1.0]]),
    edge("neg-inf-input", "log q = -inf where t > 0: the divergence is +inf",
         [[-INF, 0.0]], [[0.5, 1.0]]),
    edge("normalized", "q and t both sum to 1: the -t + q terms cancel and it is the KL divergence "
                       "(0.3 log(0.3 / 0.2) + 0.7 log(0.7 / 0.8))",
         [[float(np.log(0.2)), float(np.log(0.8))]], [[0.3, 0.7]]),
    edge("huge-input", "log q = 100 and 1e4 overflow exp in float32 (1e4 in float64): +inf",
         [[100.0, 1e4]], [[1.0, 2.0]]),
    edge("near-minimum", "q within 1e-4 of t: t log t - t log q - t + q cancels, t (e^r - 1 - r) does not",
         [[1e-4, -1e-4]], [[1.0, 1.0]]),
]
# fmt: on


# fmt: off
SPECS: list[Spec] = [
    Spec("poisson_nll", "Poisson NLL: rate - t log rate (or exp(c) - t c on log rates), optional Stirling term",
         lk.poisson_nll,
         {"log_input": False, "full": False, "eps": 0.0, "reduction": "mean"},
         ("sample_axis", "stirling_cutoff"),
         poisson_cases(), POISSON_NLL, classes=False, gradient=lk.poisson_nll_grad,
         error_model=lk.poisson_nll_error, stages=lk.POISSON_STAGES),
    Spec("gaussian_nll", "Gaussian NLL: (log v + (x - t)^2 / v) / 2 with the variance v clamped at eps",
         lk.gaussian_nll,
         {"full": False, "eps": 0.0, "reduction": "mean"},
         ("var_clamp_grad",),
         gaussian_cases(), GAUSSIAN_NLL, classes=False, gradient=lk.gaussian_nll_grad,
         arrays=("var",), wrt=("input", "var"), error_model=lk.gaussian_nll_error, stages=lk.GAUSSIAN_STAGES),
    Spec("generalized_kl_div", "generalized KL of unnormalized measures: t log(t / q) - t + q, input log q",
         lk.generalized_kl_div,
         {"reduction": "mean"},
         ("sample_axis",),
         generalized_kl_cases(), GENERALIZED_KL_DIV, classes=False, gradient=lk.generalized_kl_div_grad),
]
# fmt: on
SPECS = [optax_axis_where(s) if s.name == "generalized_kl_div" else s for s in SPECS]

#: The spec whose Keras class takes ``sample_weight`` (``bindings.keras_sample_weight``): Poisson's
#: per-sample loss is the mean of its own row's last axis.
SPECS = [keras_sample_weight(s, drop=("log_input", "full", "eps")) if s.name == "poisson_nll" else s for s in SPECS]

# fmt: off
PARAMETERS: dict[str, object] = {
    "log_input": bool,
    "full": bool,
    "eps": float,
}
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    # The Poisson NLL: log_input defaults to True and eps to 1e-8 in PyTorch; its Stirling term
    # is masked where target <= 1 (the plain stirling_cutoff). Composite ATen ops, each rounded to the
    # input dtype (aten/src/ATen/native/Loss.cpp: exp(input) - target * input, the Stirling term).
    *torch_pair("poisson_nll_loss", "PoissonNLLLoss", "poisson_nll",
                params={**REDUCTION, "log_input": "log_input", "full": "full", "eps": "eps"},
                defaults={"log_input": True, "eps": 1e-8}, stages=lk.POISSON_STAGES),
    # var is a third positional argument; its clamp at eps is documented as ignored by autograd. Each op in
    # the input dtype (torch/nn/functional.py, gaussian_nll_loss: 0.5 * (log(var) + (input - target)**2 / var)).
    Binding("torch.nn.functional.gaussian_nll_loss", "gaussian_nll", "torch",
            "F.gaussian_nll_loss(input, target, var{kw})",
            params={**REDUCTION, "full": "full", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions={"var_clamp_grad": "ignore"}, stages=lk.GAUSSIAN_STAGES),
    Binding("torch.nn.GaussianNLLLoss", "gaussian_nll", "torch",
            "torch.nn.GaussianNLLLoss({kw})(input, target, var)",
            params={**REDUCTION, "full": "full", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions={"var_clamp_grad": "ignore"}, stages=lk.GAUSSIAN_STAGES),
    # -- tensorflow (tf.nn) --
    # Elementwise, on log rates only; its Stirling term is left out only for 0 <= t <= 1. Each op in the
    # input dtype (tensorflow/python/ops/nn_impl.py, log_poisson_loss, at v2.21.0).
    Binding("tf.nn.log_poisson_loss", "poisson_nll", "tensorflow",
            "tf.nn.log_poisson_loss(target, input{kw})",
            params={"full": "compute_full_loss"}, defaults={"log_input": True}, fixed=NO_REDUCTION,
            conventions={"stirling_cutoff": "unit_interval"}, stages=lk.POISSON_STAGES),
    # -- jax (optax.losses) --
    # t log(t / q) - t + q summed over the last axis, input log q; convex_kl_divergence is its
    # deprecated alias (it warns, and calls generalized_kl_divergence).
    optax_loss("generalized_kl_divergence", "generalized_kl_div", params=AXIS_WHERE,
               conventions={"sample_axis": "sum"}),
    optax_loss("convex_kl_divergence", "generalized_kl_div", params=AXIS_WHERE,
               conventions={"sample_axis": "sum"}),
    # -- keras --
    # y_pred - y_true log(y_pred + epsilon) on rates, epsilon = backend.epsilon() = 1e-7 in the
    # input's dtype, mean over the last axis.
    *keras_pair("Poisson", "poisson", "poisson_nll", defaults={"eps": KERAS_EPS}, conventions={"sample_axis": "mean"},
                sample_weight=True),
]
# fmt: on
