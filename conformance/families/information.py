"""Information-theoretic quantities of discrete distributions, in nats or bits: entropy H(P),
cross-entropy H(P, Q) and KL(P || Q). Oracles in ``reference/information.py``.
"""

from __future__ import annotations

import numpy as np

from lossparity.conformance.edges import edge
from lossparity.conformance.generate import (
    CLASS_MENU,
    _set,
    arrays,
    batch_shapes,
    case_strategy,
    floats,
    pick,
    pick_shape,
)
from lossparity.core.model import PROBABILITY, Binding, Spec
from lossparity.reference import information as info

#: What each new parameter accepts (``lossparity explain --param``).
PARAMETERS: dict[str, object] = {
    "base": ("e", 2),
}


# ----------------------------------------------------------------------------- strategies


@case_strategy
def distributions(draw, pair: bool):
    shape = draw(batch_shapes(min_dims=0, max_dims=2)) + (draw(pick_shape(CLASS_MENU + (6,))),)

    def dist():
        raw = draw(arrays(shape, floats(0, 1)))
        sums = raw.sum(axis=-1, keepdims=True)
        return np.where(sums > 0, raw / np.where(sums > 0, sums, 1), 1.0 / shape[-1])

    arrays_ = {"input": dist()}
    if pair:
        arrays_["target"] = dist()
    params = {}
    _set(params, "base", draw(pick(["e", "e", 2])), "e")
    return arrays_, params


# ----------------------------------------------------------------------------- edge tables

# fmt: off
ENTROPY = [
    edge("fair-coin", "a fair coin carries log 2 nats (seed 002's H(P) = -sum P log P)", [0.5, 0.5]),
    edge("fair-coin-bits", "the same in bits: exactly 1", [0.5, 0.5], base=2),
    edge("certain", "a certain outcome carries no information; 0 log 0 = 0", [1.0, 0.0, 0.0]),
    edge("batch", "a batch of distributions, one entropy each", [[0.25, 0.75], [0.5, 0.5]]),
]
# fmt: on
# fmt: off
CROSS_ENTROPY = [
    edge("dyadic", "P = (1/2, 1/4, 1/4), Q = (1/4, 1/4, 1/2): by hand 1/2*2 + 1/4*2 + 1/4*1 = 1.75 bits",
         [0.25, 0.25, 0.5], [0.5, 0.25, 0.25], base=2),
]
# fmt: on
# fmt: off
KL_DIVERGENCE = [
    edge("dyadic", "the same P, Q: 1.75 - H(P) = 1.75 - 1.5 = 0.25 bits (seed 002's identity)",
         [0.25, 0.25, 0.5], [0.5, 0.25, 0.25], base=2),
    edge("same", "KL(P || P) = 0", [0.2, 0.8], [0.2, 0.8]),
    edge("support-mismatch", "q = 0 where p > 0: KL is +inf", [1.0, 0.0], [0.5, 0.5]),
]
# fmt: on


# ----------------------------------------------------------------------------- specs

# fmt: off
SPECS: list[Spec] = [
    Spec("entropy", "entropy H(P) of a discrete distribution, in nats or bits",
         info.entropy, {"base": "e"}, ("renormalize", "prob_eps"),
         distributions(pair=False), ENTROPY, target=None,
         gradient=info.entropy_grad,
         error_model=info.entropy_error, stages=info.ENTROPY_STAGES,
         domain={"input": PROBABILITY}),
    Spec("cross_entropy", "cross-entropy H(P, Q) of two discrete distributions, in nats or bits",
         info.cross_entropy, {"base": "e"}, ("renormalize", "prob_eps"),
         distributions(pair=True), CROSS_ENTROPY,
         gradient=info.cross_entropy_grad,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
    Spec("kl_divergence", "KL(P || Q) of two discrete distributions, in nats or bits",
         info.kl_divergence, {"base": "e"}, ("renormalize", "prob_eps", "zero_term_slope"),
         distributions(pair=True), KL_DIVERGENCE,
         gradient=info.kl_divergence_grad,
         domain={"input": PROBABILITY, "target": PROBABILITY}),
]
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch (torch.distributions) --
    # Categorical(probs=p): probs = p / p.sum(-1), logits = log(clamp_probs(probs)), entropy
    # -(logits * probs).sum(-1), each in the input's dtype (torch/distributions/categorical.py,
    # v2.13.0, L70 and L159-L163; utils.py L128-L138).
    Binding("torch.distributions.Categorical.entropy", "entropy", "torch",
            "torch.distributions.Categorical(probs=input).entropy()",
            conventions={"renormalize": "before", "prob_eps": "finfo"}, stages=info.ENTROPY_STAGES),
    # _kl_categorical_categorical writes the term of p = 0 as a constant: t[p.probs == 0] = 0
    # (torch/distributions/kl.py, v2.13.0, L251): its slope in p is 0 (zero_term_slope).
    Binding("torch.distributions.kl.kl_divergence", "kl_divergence", "torch",
            "torch.distributions.kl.kl_divergence(torch.distributions.Categorical(probs=target), "
            "torch.distributions.Categorical(probs=input))",
            conventions={"renormalize": "before", "prob_eps": "finfo", "zero_term_slope": "zero"}),
    # -- jax (jax.scipy.special) --
    # XLA on CPU flushes subnormal numbers to zero (float32 and float64): rel_entr reads a
    # subnormal q as 0 (q > 0 is false) and returns inf where the oracle's value is finite.
    # entr is -xlogy(x, x) with the custom JVP -(log x + 1), in the input's dtype, and the sum
    # over the outcomes in it too (jax/_src/scipy/special.py, jax-v0.10.2, L1003-L1042).
    Binding("jax.scipy.special.entr", "entropy", "jax", "jax.scipy.special.entr(input{kw}).sum(-1)",
            stages=("log",)),
    # rel_entr selects 0 for p = 0 (where(p > 0 & q > 0, p log p - p log q, where(p = 0 & q >= 0,
    # 0, inf)), jax/_src/scipy/special.py, jax-v0.10.2, L1209-L1222): slope 0 there (zero_term_slope).
    Binding("jax.scipy.special.rel_entr", "kl_divergence", "jax",
            "jax.scipy.special.rel_entr(target, input{kw}).sum(-1)", conventions={"zero_term_slope": "zero"}),
]
# fmt: on
