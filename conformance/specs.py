"""The loss specs: each canonical loss once, as data. Everything else reads this table.

The cross-entropy and information losses are declared here; the other families in
``conformance/families/`` (each with its oracles in ``reference/<family>.py``).
"""

from __future__ import annotations

import numpy as np

from lossparity.conformance import edges, families, generate as g
from lossparity.core.model import Spec
from lossparity.reference import crossentropy as ce, information as info, kl


SPECS: dict[str, Spec] = {s.name: s for s in [
    Spec("binary_cross_entropy", "BCE on probabilities: -[y log p + (1-y) log(1-p)]",
         ce.binary_cross_entropy,
         {"weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("log_min", "prob_eps", "prob_domain", "sample_axis"),
         g.binary(logits=False), edges.BINARY_CROSS_ENTROPY, classes=False,
         gradient=ce.binary_cross_entropy_grad),
    Spec("binary_cross_entropy_with_logits", "BCE on logits: BCE of sigmoid(x), with pos_weight",
         ce.binary_cross_entropy_with_logits,
         {"weight": None, "pos_weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("sample_axis",),
         g.binary(logits=True), edges.BINARY_CROSS_ENTROPY_WITH_LOGITS, classes=False,
         gradient=ce.binary_cross_entropy_with_logits_grad),
    Spec("softmax_cross_entropy", "softmax cross-entropy on logits with class-index targets",
         ce.softmax_cross_entropy,
         {"weight": None, "ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("class_axis", "mean_by", "zero_division", "invalid_label"),
         g.class_index(), edges.SOFTMAX_CROSS_ENTROPY, target="index",
         gradient=ce.softmax_cross_entropy_grad),
    Spec("softmax_cross_entropy_soft", "softmax cross-entropy on logits with probability targets",
         ce.softmax_cross_entropy_soft,
         {"weight": None, "label_smoothing": 0.0, "reduction": "mean"},
         ("class_axis",),
         g.soft_targets(probs_input=False), edges.SOFTMAX_CROSS_ENTROPY_SOFT,
         gradient=ce.softmax_cross_entropy_soft_grad),
    Spec("categorical_cross_entropy", "cross-entropy of predicted probabilities against probability targets",
         ce.categorical_cross_entropy,
         {"label_smoothing": 0.0, "reduction": "mean"},
         ("prob_eps", "renormalize"),
         g.soft_targets(probs_input=True, weights=False), edges.CATEGORICAL_CROSS_ENTROPY,
         gradient=ce.categorical_cross_entropy_grad),
    Spec("sparse_categorical_cross_entropy", "cross-entropy of predicted probabilities against class indices",
         ce.sparse_categorical_cross_entropy,
         {"ignore_index": None, "reduction": "mean"},
         ("prob_eps", "renormalize", "zero_division", "invalid_label"),
         g.class_index(probs=True, smoothing=False, weights=False), edges.SPARSE_CATEGORICAL_CROSS_ENTROPY,
         target="index", gradient=ce.sparse_categorical_cross_entropy_grad),
    Spec("nll_loss", "negative log-likelihood on log-probabilities with class-index targets",
         ce.nll_loss,
         {"weight": None, "ignore_index": None, "reduction": "mean"},
         ("class_axis", "mean_by", "zero_division", "invalid_label"),
         g.class_index(log_probs=True, smoothing=False), edges.NLL_LOSS, target="index",
         gradient=ce.nll_loss_grad),
    Spec("kl_div", "KL divergence with log-space input: p (log p - input)",
         kl.kl_div,
         {"log_target": False, "reduction": "mean"},
         ("sample_axis",),
         g.kl_cases(log_input=True), edges.KL_DIV, classes=False,
         gradient=kl.kl_div_grad),
    Spec("kl_div_probs", "KL divergence of probability vectors: sum p log(p / q) per sample",
         kl.kl_div_probs,
         {"reduction": "mean"},
         ("prob_eps",),
         g.kl_cases(log_input=False), edges.KL_DIV_PROBS,
         gradient=kl.kl_div_probs_grad),
    Spec("entropy", "entropy H(P) of a discrete distribution, in nats or bits",
         info.entropy, {"base": "e"}, ("renormalize", "prob_eps"),
         g.distributions(pair=False), edges.ENTROPY, target=None,
         gradient=info.entropy_grad),
    Spec("cross_entropy", "cross-entropy H(P, Q) of two discrete distributions, in nats or bits",
         info.cross_entropy, {"base": "e"}, ("renormalize", "prob_eps"),
         g.distributions(pair=True), edges.CROSS_ENTROPY,
         gradient=info.cross_entropy_grad),
    Spec("kl_divergence", "KL(P || Q) of two discrete distributions, in nats or bits",
         info.kl_divergence, {"base": "e"}, ("renormalize", "prob_eps"),
         g.distributions(pair=True), edges.KL_DIVERGENCE,
         gradient=info.kl_divergence_grad),
]}


#: What each parameter accepts: a tuple of values, a type, or ``np.ndarray`` for array
#: parameters. Checked where a user types parameters (``lossparity explain --param``).
PARAMETERS: dict[str, object] = {
    "reduction": ("none", "sum", "mean", "batchmean"),
    "label_smoothing": float,
    "ignore_index": int,
    "log_target": bool,
    "base": ("e", 2),
    "weight": np.ndarray,
    "pos_weight": np.ndarray,
}

for _family in families.modules():
    SPECS.update({s.name: s for s in _family.SPECS})
    for _name, _domain in _family.PARAMETERS.items():  # one vocabulary: a name means one thing
        if PARAMETERS.setdefault(_name, _domain) != _domain:
            raise TypeError(f"{_family.__name__} declares parameter {_name!r} as {_domain!r}, "
                            f"already declared as {PARAMETERS[_name]!r}")
