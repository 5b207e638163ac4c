"""KL divergence: PyTorch/optax style (log-probability input, optionally log-probability
targets, the ``batchmean`` reduction) and Keras style (probabilities). Oracles in
``reference/kl.py``; the generalized KL of unnormalized measures is a likelihood loss
(``families/likelihood.py``), KL(P || Q) in bits or nats an information one (``families/information.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance.bindings import (
    AXIS_WHERE,
    KERAS_EPS,
    REDUCTION,
    keras_pair,
    keras_sample_weight,
    optax_axis_where,
    optax_loss,
    torch_pair,
)
from lossparity.conformance.edges import INF, edge
from lossparity.conformance.generate import FLAG, arrays, batch_shapes, case_strategy, floats, pick, reductions
from lossparity.core.model import PROBABILITY, Binding, Spec
from lossparity.reference import kl

#: What each new parameter accepts (``lossparity explain --param``).
PARAMETERS: dict[str, object] = {
    "log_target": bool,
}


# ----------------------------------------------------------------------------- strategies


@case_strategy
def kl_cases(draw, log_input: bool):
    shape = draw(batch_shapes(min_dims=1))
    n = shape[-1]
    params = {"reduction": draw(reductions(batchmean=log_input))}
    log_target = log_input and draw(pick(FLAG))
    q = draw(arrays(shape, floats(0.001, 1)))
    q = q / q.sum(axis=-1, keepdims=True)
    # log p = -inf lives in the edge table: log targets are drawn positive
    p = draw(arrays(shape, st.floats(0, 1, exclude_min=True, width=32) if log_target else floats(0, 1)))
    sums = p.sum(axis=-1, keepdims=True)
    p = np.where(sums > 0, p / np.where(sums > 0, sums, 1), 1.0 / n)
    if not log_input:
        return {"input": q, "target": p}, params
    if log_target:
        params["log_target"] = True
        p = np.log(p)
    return {"input": np.log(q), "target": p}, params


# ----------------------------------------------------------------------------- edge tables

# fmt: off
KL_DIV = [
    edge("zero-target", "p = 0 contributes 0 whatever log q is (xlogy)",
         [[-1.0, -0.5]], [[0.0, 1.0]], reduction="sum"),
    edge("zero-target-neg-inf-input", "p = 0 and log q = -inf: 0 * -inf, the limit is 0",
         [[-INF, 0.0]], [[0.0, 1.0]], reduction="sum"),
    edge("batchmean", "batchmean divides the sum by the batch size, the true KL per sample",
         [[-1.2, -0.36], [-0.1, -2.4]], [[0.3, 0.7], [0.9, 0.1]], reduction="batchmean"),
    edge("log-target-neg-inf", "log_target=True with a target log p = -inf (p = 0): the term is 0",
         [[-1.2, -0.36]], [[-INF, 0.0]], reduction="none", log_target=True),
    edge("log-target", "log_target=True takes the target as log p",
         [[-1.2, -0.36]], [[-1.0, -0.45867514538708193]], reduction="none", log_target=True),
]
# fmt: on

# fmt: off
KL_DIV_PROBS = [
    edge("zero-target", "p = 0: Keras clips it to 1e-7 and it contributes 1e-7 log(1e-7 / q)",
         [[0.5, 0.5]], [[0.0, 1.0]], reduction="none"),
    edge("zero-prediction", "q = 0 where p > 0: KL is infinite; Keras clips q at 1e-7",
         [[0.0, 1.0]], [[0.5, 0.5]], reduction="none"),
]
# fmt: on


# ----------------------------------------------------------------------------- specs

# fmt: off
SPECS: list[Spec] = [
    Spec("kl_div", "KL divergence with log-space input: p (log p - input)",
         kl.kl_div,
         {"log_target": False, "reduction": "mean"},
         ("sample_axis",),
         kl_cases(log_input=True), KL_DIV, classes=False,
         gradient=kl.kl_div_grad,
         error_model=kl.kl_div_error, stages=kl.KL_DIV_STAGES),
    Spec("kl_div_probs", "KL divergence of probability vectors: sum p log(p / q) per sample",
         kl.kl_div_probs,
         {"reduction": "mean"},
         ("prob_eps", "clip_tie"),
         kl_cases(log_input=False), KL_DIV_PROBS,
         gradient=kl.kl_div_probs_grad,
         error_model=kl.kl_div_probs_error, stages=kl.KL_STAGES,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
]
# fmt: on
SPECS = [optax_axis_where(s, keeps=("log_target",), plain=("log_target",)) if s.name == "kl_div" else s for s in SPECS]

#: The spec whose Keras class takes ``sample_weight`` (``bindings.keras_sample_weight``):
#: KLDivergence's per-sample loss sums its own row's last axis.
SPECS = [keras_sample_weight(s) if s.name == "kl_div_probs" else s for s in SPECS]


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    # kl_div computes xlogy(t, t) - t * input (exp(t) * (t - input) with log_target) op by op in
    # the input's dtype, no upcast (ATen Loss.cpp): the rounding model ``kl.kl_div_error``.
    *torch_pair("kl_div", "KLDivLoss", "kl_div", params={**REDUCTION, "log_target": "log_target"},
                stages=kl.KL_DIV_STAGES),
    # -- jax (optax.losses) --
    # kl_divergence takes the targets as probabilities ("expected to be strictly positive"; a
    # target of 0 contributes 0 * (0 - log q)), kl_divergence_with_log_targets as
    # log-probabilities; both sum over the last axis.
    optax_loss("kl_divergence", "kl_div", params=AXIS_WHERE,
               conventions={"sample_axis": "sum"}),
    optax_loss("kl_divergence_with_log_targets", "kl_div", params=AXIS_WHERE,
               requires={"log_target": True}, conventions={"sample_axis": "sum"}),
    # -- keras --
    # KLDivergence clips both arguments into [1e-7, 1] with ops.clip (jnp.clip on JAX, which
    # passes half the slope at a bound: every probability of exactly 1), then computes
    # sum(y_true * log(y_true / y_pred), axis=-1) in its inputs' dtype, no upcast
    # (keras/src/losses/losses.py, v3.15.1, L2102-L2106; the class form in floatx, float32).
    *keras_pair("KLDivergence", "kl_divergence", "kl_div_probs", conventions={"prob_eps": KERAS_EPS},
                backends={"jax": {"clip_tie": "split"}}, stages=kl.KL_STAGES, sample_weight=True),
]
# fmt: on
