"""Hand tables of extreme inputs, one per spec. Every row says why it is there.

Rows are canonical (class axis last). A row restricted to some dtypes says so: one ULP
inside [0, 1] is a different number in float32 and float64.
"""

from __future__ import annotations

import numpy as np

from lossparity.core.model import Case

F32_TINY = float(np.nextafter(np.float32(0), np.float32(1)))  # smallest float32 subnormal
F32_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2**-24
F64_TINY = float(np.nextafter(0.0, 1.0))
F64_BELOW_ONE = float(np.nextafter(1.0, 0.0))
INF, NAN = float("inf"), float("nan")


def _a(values, dtype=np.float64):
    if isinstance(values, np.ndarray):
        return values
    return np.array(values, dtype=dtype)


def _rows(spec: str, table) -> tuple[Case, ...]:
    out = []
    for row in table:
        name, why, inp, tgt, params, *dtypes = row
        tdtype = np.int64 if _all_ints(tgt) and spec_uses_index(spec) else np.float64
        if isinstance(inp, dict):  # every array by name: {"input": ..., "input2": ..., "target": ...}
            arrays = {k: _a(v) for k, v in inp.items()}
        else:
            arrays = {"input": _a(inp)} if tgt is None else {"input": _a(inp), "target": _a(tgt, tdtype)}
        out.append(Case(spec, f"edge-{name}", {"table": "edges", "row": name, "why": why}, arrays,
                        {k: (_a(v) if isinstance(v, list) else v) for k, v in params.items()},
                        tuple(dtypes[0]) if dtypes else ()))
    return tuple(out)


def _all_ints(x):
    if isinstance(x, list):
        return all(_all_ints(v) for v in x)
    return isinstance(x, int) or (isinstance(x, np.ndarray) and x.dtype.kind == "i")


def spec_uses_index(spec):
    return spec in ("softmax_cross_entropy", "nll_loss", "sparse_categorical_cross_entropy")


# (id, why, input, target, params[, dtypes]); ``input`` may instead be a dict of every array
# by name (``target`` then None), lists read as float64: integer arrays are given as np arrays.
BINARY_CROSS_ENTROPY = _rows("binary_cross_entropy", [
    ("seed-000", "seed 000: nn.BCELoss() on [0.8, 0.2, 0.4] / [1, 0, 0] is 0.3190",
     [0.8, 0.2, 0.4], [1.0, 0.0, 0.0], {}),
    ("p-zero-y-one", "log(0) = -inf: PyTorch clamps the log at -100, Keras clips p at 1e-7",
     [0.0, 0.5], [1.0, 0.0], {"reduction": "none"}),
    ("p-one-y-zero", "log(1 - 1) = -inf from the other side",
     [1.0, 0.5], [0.0, 1.0], {"reduction": "none"}),
    ("p-exact-agree", "p exactly 0 and 1 on the right target: every log is multiplied by 0",
     [0.0, 1.0], [0.0, 1.0], {"reduction": "none"}),
    ("p-ulp-f32", "one float32 ULP inside (0, 1): the first values a clip changes",
     [F32_TINY, F32_BELOW_ONE], [1.0, 0.0], {"reduction": "none"}, ("float32",)),
    ("p-ulp-f64", "one float64 ULP inside (0, 1)",
     [F64_TINY, F64_BELOW_ONE], [1.0, 0.0], {"reduction": "none"}, ("float64",)),
    ("p-nan", "a NaN probability propagates; nothing documents a check",
     [NAN, 0.5], [1.0, 0.0], {"reduction": "none"}),
    ("soft-target", "targets strictly between 0 and 1 are documented as allowed",
     [0.3, 0.7], [0.25, 0.9], {"reduction": "sum"}),
    ("empty", "an empty batch: the mean divides 0 by 0",
     [], [], {}),
    ("weighted", "a per-element weight rescales each term; mean stays over elements",
     [[0.3, 0.6], [0.9, 0.1]], [[1.0, 0.0], [1.0, 1.0]], {"weight": [2.0, 0.5]}),
])

BINARY_CROSS_ENTROPY_WITH_LOGITS = _rows("binary_cross_entropy_with_logits", [
    ("huge-logits", "logits of +-1e4: exp overflows in a naive sigmoid, softplus must not",
     [1e4, -1e4, 1e4, -1e4], [1.0, 0.0, 0.0, 1.0], {"reduction": "none"}),
    ("inf-logits-right", "+-inf logits on the right side: the limit is a loss of 0",
     [INF, -INF], [1.0, 0.0], {"reduction": "none"}),
    ("inf-logits-wrong", "+-inf logits on the wrong side: the limit is an infinite loss",
     [INF, -INF], [0.0, 1.0], {"reduction": "none"}),
    ("nan-logit", "a NaN logit propagates",
     [NAN, 0.0], [1.0, 0.0], {"reduction": "none"}),
    ("zero-logit", "logit 0 is probability 1/2: the loss is log 2 whatever the target",
     [0.0, 0.0], [1.0, 0.3], {"reduction": "none"}),
    ("pos-weight", "pos_weight scales only the positive term",
     [[1.5, -0.5, 2.0]], [[1.0, 0.0, 0.5]], {"pos_weight": [3.0, 3.0, 0.5]}),
    ("empty", "an empty batch: the mean divides 0 by 0",
     [], [], {}),
])

SOFTMAX_CROSS_ENTROPY = _rows("softmax_cross_entropy", [
    ("seed-000", "seed 000: nn.CrossEntropyLoss() reads [0.8, 0.2, 0.4] as one unbatched "
                 "sample's logits; target 0 gives 0.7971",
     [0.8, 0.2, 0.4], 0, {}),
    ("seed-001", "seed 001: tf.nn.sparse_softmax_cross_entropy_with_logits on labels [2, 0] "
                 "gives [0.32656264, 0.4643688]",
     [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [2, 0], {"reduction": "none"}),
    ("huge-logits", "logits of +-1e4: logsumexp must shift by the max",
     [[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], [0, 0], {"reduction": "none"}),
    ("inf-logit", "a +inf logit: inf - inf in the shifted logsumexp",
     [[INF, 0.0, 0.0]], [0], {"reduction": "none"}),
    ("neg-inf-logit", "a -inf logit is probability 0: fine unless it is the target",
     [[-INF, 0.0, 1.0], [-INF, 0.0, 1.0]], [1, 0], {"reduction": "none"}),
    ("nan-logit", "a NaN logit poisons its sample's softmax",
     [[NAN, 0.0], [1.0, 0.0]], [1, 1], {"reduction": "none"}),
    ("one-class", "a single class: softmax is 1, the loss is 0",
     [[3.0], [-2.0]], [0, 0], {}),
    ("some-ignored", "ignored targets contribute 0 and are not counted by the mean",
     [[1.0, 2.0], [0.5, -0.5], [3.0, 0.0]], [1, -100, 0], {"ignore_index": -100}),
    ("all-ignored", "every target ignored: mean over nothing (PyTorch: nan)",
     [[1.0, 2.0], [0.5, -0.5]], [-100, -100], {"ignore_index": -100}),
    ("default-minus-100", "label -100 with no ignore_index given: PyTorch ignores it by default, "
                          "elsewhere it is an invalid label",
     [[1.0, 2.0], [0.5, -0.5]], [-100, 1], {"reduction": "sum"}),
    ("label-too-big", "label C is out of range: documented as an error in PyTorch and tf.nn",
     [[1.0, 2.0], [0.5, -0.5]], [0, 2], {"reduction": "none"}),
    ("label-negative", "label -1 is out of range (not ignored): error, wrap or nan?",
     [[1.0, 2.0], [0.5, -0.5]], [0, -1], {"reduction": "none"}),
    ("empty", "an empty batch of 3 classes",
     np.zeros((0, 3)), np.zeros((0,), np.int64), {}),
    ("spatial", "(N, d1, C) canonical = (N, C, d1) in PyTorch: the class axis moves",
     [[[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]]], [[2, 0]], {"reduction": "none"}),
    ("weighted-mean", "a weighted mean divides by the targets' weights in PyTorch",
     [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0, 2], {"weight": [3.0, 1.0, 0.5]}),
    ("smoothing-weighted", "label smoothing with class weights: PyTorch weights the smoothing term",
     [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0, 2], {"weight": [3.0, 1.0, 0.5], "label_smoothing": 0.2}),
])

SOFTMAX_CROSS_ENTROPY_SOFT = _rows("softmax_cross_entropy_soft", [
    ("one-hot", "one-hot probability targets equal class-index targets",
     [[2.0, -1.0, 3.0], [1.0, 0.0, -0.5]], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], {"reduction": "none"}),
    ("huge-logits", "logits of +-1e4 with a soft target",
     [[1e4, -1e4, 0.0]], [[0.5, 0.0, 0.5]], {"reduction": "none"}),
    ("neg-inf-zero-target", "a -inf logit with target 0 there: 0 * -inf, the limit is 0",
     [[-INF, 0.0, 1.0]], [[0.0, 0.5, 0.5]], {"reduction": "none"}),
    ("unnormalized", "targets that do not sum to 1 are used as given (nothing documents a check)",
     [[1.0, 2.0]], [[0.7, 0.7]], {"reduction": "none"}),
    ("unbatched", "an unbatched (C) input",
     [0.8, 0.2, 0.4], [1.0, 0.0, 0.0], {}),
])

CATEGORICAL_CROSS_ENTROPY = _rows("categorical_cross_entropy", [
    ("zero-prob-target", "probability 0 on the target class: Keras clips at 1e-7",
     [[0.0, 1.0], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]], {"reduction": "none"}),
    ("unnormalized", "predictions that do not sum to 1: Keras renormalizes",
     [[0.2, 0.2, 0.2]], [[0.0, 1.0, 0.0]], {"reduction": "none"}),
])

SPARSE_CATEGORICAL_CROSS_ENTROPY = _rows("sparse_categorical_cross_entropy", [
    ("keras-doc", "the Keras docstring example: [0.0513, 2.303]",
     [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], [1, 2], {"reduction": "none"}),
    ("zero-prob-target", "probability 0 on the target class: clipped at 1e-7",
     [[0.0, 1.0]], [0], {"reduction": "none"}),
    ("all-ignored", "every target ignored: Keras' divide_no_nan gives 0",
     [[0.5, 0.5], [0.2, 0.8]], [1, 1], {"ignore_index": 1}),
])

NLL_LOSS = _rows("nll_loss", [
    ("seed-002", "seed 002's formula l_n = -w[y_n] x[n, y_n]; here the log-softmax of [1, 2, 3]",
     [[-2.40760596444438, -1.40760596444438, -0.40760596444438]], [2], {}),
    ("some-ignored", "ignored targets contribute 0 and are not counted",
     [[-0.5, -1.0], [-2.0, -0.1]], [-100, 0], {"ignore_index": -100}),
    ("all-ignored", "every target ignored: 0 / 0",
     [[-0.5, -1.0]], [-100], {"ignore_index": -100}),
    ("label-too-big", "label C is out of range: documented error",
     [[-0.5, -1.0]], [2], {}),
    ("neg-inf-target", "log-probability -inf on the target: the loss is +inf",
     [[-INF, 0.0]], [0], {"reduction": "none"}),
])

KL_DIV = _rows("kl_div", [
    ("zero-target", "p = 0 contributes 0 whatever log q is (xlogy)",
     [[-1.0, -0.5]], [[0.0, 1.0]], {"reduction": "sum"}),
    ("zero-target-neg-inf-input", "p = 0 and log q = -inf: 0 * -inf, the limit is 0",
     [[-INF, 0.0]], [[0.0, 1.0]], {"reduction": "sum"}),
    ("batchmean", "batchmean divides the sum by the batch size, the true KL per sample",
     [[-1.2, -0.36], [-0.1, -2.4]], [[0.3, 0.7], [0.9, 0.1]], {"reduction": "batchmean"}),
    ("log-target-neg-inf", "log_target=True with a target log p = -inf (p = 0): the term is 0",
     [[-1.2, -0.36]], [[-INF, 0.0]], {"reduction": "none", "log_target": True}),
    ("log-target", "log_target=True takes the target as log p",
     [[-1.2, -0.36]], [[-1.0, -0.45867514538708193]], {"reduction": "none", "log_target": True}),
])

KL_DIV_PROBS = _rows("kl_div_probs", [
    ("zero-target", "p = 0: Keras clips it to 1e-7 and it contributes 1e-7 log(1e-7 / q)",
     [[0.5, 0.5]], [[0.0, 1.0]], {"reduction": "none"}),
    ("zero-prediction", "q = 0 where p > 0: KL is infinite; Keras clips q at 1e-7",
     [[0.0, 1.0]], [[0.5, 0.5]], {"reduction": "none"}),
])

ENTROPY = _rows("entropy", [
    ("fair-coin", "a fair coin carries log 2 nats (seed 002's H(P) = -sum P log P)", [0.5, 0.5], None, {}),
    ("fair-coin-bits", "the same in bits: exactly 1", [0.5, 0.5], None, {"base": 2}),
    ("certain", "a certain outcome carries no information; 0 log 0 = 0", [1.0, 0.0, 0.0], None, {}),
    ("batch", "a batch of distributions, one entropy each", [[0.25, 0.75], [0.5, 0.5]], None, {}),
])
CROSS_ENTROPY = _rows("cross_entropy", [
    ("dyadic", "P = (1/2, 1/4, 1/4), Q = (1/4, 1/4, 1/2): by hand 1/2*2 + 1/4*2 + 1/4*1 = 1.75 bits",
     [0.25, 0.25, 0.5], [0.5, 0.25, 0.25], {"base": 2}),
])
KL_DIVERGENCE = _rows("kl_divergence", [
    ("dyadic", "the same P, Q: 1.75 - H(P) = 1.75 - 1.5 = 0.25 bits (seed 002's identity)",
     [0.25, 0.25, 0.5], [0.5, 0.25, 0.25], {"base": 2}),
    ("same", "KL(P || P) = 0", [0.2, 0.8], [0.2, 0.8], {}),
    ("support-mismatch", "q = 0 where p > 0: KL is +inf", [1.0, 0.0], [0.5, 0.5], {}),
])
