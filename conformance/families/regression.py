"""Regression losses: absolute, squared, Huber/smooth L1, log-cosh, percentage and squared
logarithmic errors, and ``l2_loss`` (the squared norm of one tensor, no target).

Cases are elementwise: input and target of one shape, at least one axis (Keras' function
forms take a mean over the last axis, which a scalar lacks). Some targets equal their inputs
exactly (a zero residual: the kink of |r|), deltas cover the quadratic and the linear zone.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lossparity.conformance import generate as g
from lossparity.conformance.bindings import (
    KERAS_EPS,
    NO_REDUCTION,
    OPTAX,
    REDUCTION,
    TF_V1,
    integer_target_spec,
    keras_pair,
    keras_sample_weight,
    optax_loss,
    tf_v1_loss,
    torch_pair,
    with_convention,
)
from lossparity.conformance.edges import INF, NAN, edge
from lossparity.core.model import Binding, Spec
from lossparity.reference import regression as reg

#: What each new parameter accepts (``lossparity explain --param``).
PARAMETERS: dict[str, object] = {"delta": float}

F32_EPS7 = float(np.float32(1e-7))  # Keras' epsilon as a float32 tensor holds it


# ----------------------------------------------------------------------------- strategies


@g.case_strategy
def residuals(
    draw,
    *,
    weights: bool = False,
    delta: bool = False,
    lo=-10.0,
    hi=10.0,
    target_lo=None,
    target_hi=None,
    away_from_zero: float | None = None,
    relative: bool = False,
    int_targets: bool = False,
):
    """(input, target) of one shape with some exact ties (residual 0), a reduction, and,
    where the spec takes them, an elementwise ``weight`` and a ``delta``.

    ``away_from_zero``: targets have |y| >= that (a percentage error of a target near 0 is
    the edge table's, not the generator's); ``relative``: inputs are drawn relative to
    their targets (see below); ``int_targets``: the cases of the domain bucket (``generate.domain``,
    a tenth more) give the target as an int64 array of whole numbers (issue 19: the convention
    ``int_targets``).
    """
    shape = draw(g.batch_shapes(min_dims=1))
    x = draw(g.arrays(shape, g.floats(lo, hi)))
    t_lo, t_hi = lo if target_lo is None else target_lo, hi if target_hi is None else target_hi
    if away_from_zero is None:
        y = draw(g.arrays(shape, g.floats(t_lo, t_hi)))
    else:
        mag = draw(g.arrays(shape, g.floats(away_from_zero, t_hi)))
        y = mag * np.where(draw(g.arrays(shape, st.booleans(), dtype=bool)) & (t_lo < 0), -1.0, 1.0)
    if relative:
        # the input a factor in [0.5, 0.95] or [1.05, 2.5] of the target: the slope in y of |y - x| / |y|,
        # 100 x / y^2 for x between 0 and y, is what remains of two terms of 100 / |y| that
        # every framework subtracts; x near 0 (a relative error near 100%) would cancel them
        # to the rounding of the framework's dtype, a property of the formula, not a deviation
        # (u = 0 would be a tie everywhere; ties come from the draw below)
        u = draw(g.arrays(shape, g.floats(0.05, 1.5)))
        u = np.where(draw(g.arrays(shape, st.booleans(), dtype=bool)), -np.minimum(u, 0.5), u)
        x = (y * (1.0 + u)).astype(np.float32).astype(np.float64)
    if draw(st.integers(0, 3)) == 0:  # about a quarter of the cases tie some elements exactly
        tie = draw(g.arrays(shape, st.booleans(), dtype=bool))
        y = np.where(tie, x, y)
    params = {"reduction": draw(g.reductions())}
    if weights and draw(g.pick(g.FLAG)):
        params["weight"] = draw(g.arrays(shape, g.floats(0.25, 4)))
    if delta:
        g._set(params, "delta", draw(g.pick([1.0, 1.0, 0.5, 2.0, 0.125, 5.0])), 1.0)
    if int_targets and draw(g.domain(g.FLAG)):  # the binding's int_targets convention says what it does
        y = np.round(y).astype(np.int64)
    return {"input": x, "target": y}, params


@g.case_strategy
def one_tensor(draw):
    """One tensor, no target (``tf.nn.l2_loss``), and a reduction."""
    shape = draw(g.batch_shapes(min_dims=1))
    return {"input": draw(g.arrays(shape, g.floats(-10, 10)))}, {"reduction": draw(g.reductions())}


#: The weights of a generated mean_pairwise_squared_error case: left out (the default 1.0), a 0-d one, one per
#: sample ``(N, 1, ..., 1)``, one per element (some 0: n counts the non-zero ones), or the documented
#: ``[batch_size]``, which TensorFlow refuses for a batch of rank 2 or more (ValueError, the outcome due).
PAIRWISE_WEIGHTS = ("none", "scalar", "sample", "element", "batch_size")


@g.case_strategy
def pairwise(draw):
    """(input, target) ``(N, d0, ...)`` (rank 2 or 3: pairs are drawn within each sample) with some exact
    ties (residual 0), and maybe ``sample_weight`` of one of :data:`PAIRWISE_WEIGHTS`' shapes."""
    shape = draw(g.batch_shapes(min_dims=2))
    x = draw(g.arrays(shape, g.floats(-10, 10)))
    y = draw(g.arrays(shape, g.floats(-10, 10)))
    if draw(st.integers(0, 3)) == 0:
        y = np.where(draw(g.arrays(shape, st.booleans(), dtype=bool)), x, y)
    kind = draw(g.pick(PAIRWISE_WEIGHTS))
    params = {}
    weight = st.one_of(st.just(0.0), g.floats(0.25, 4))
    if kind != "none":
        w_shape = {
            "scalar": (),
            "sample": shape[:1] + (1,) * (len(shape) - 1),
            "element": shape,
            "batch_size": shape[:1],
        }[kind]
        params["sample_weight"] = draw(g.arrays(w_shape, weight))
    return {"input": x, "target": y}, params


# ----------------------------------------------------------------------------- edge tables
# Rows have at least one axis (see the module doc).

# fmt: off
ABSOLUTE_ERROR = [
    edge("zero-residual", "input == target: the kink of |r|, where every framework takes slope sign(0) = 0",
         [1.5, -2.0, 0.0], [1.5, -2.0, 0.0], reduction="none"),
    edge("huge-residual", "residuals of 1e30 (float32-representable, inf in float16 and bfloat16 input)",
         [1e30, -1e30], [-1e30, 1e30], reduction="none"),
    edge("overflowing-residual", "3e38 - (-3e38) overflows float32: the residual is inf there",
         [3e38, 1.0], [-3e38, 0.0], reduction="none"),
    edge("inf", "an infinite input: |inf - y| = inf, slope sign(inf) = 1",
         [INF, -INF, 0.0], [0.0, 0.0, 0.0], reduction="none"),
    edge("inf-minus-inf", "input and target both +inf: inf - inf = nan",
         [INF, 1.0], [INF, 1.0], reduction="none"),
    edge("nan", "a NaN input propagates to its loss and slope",
         [NAN, 1.0], [0.0, 2.0], reduction="none"),
    edge("weighted-mean", "PyTorch's weighted l1_loss divides the weighted sum by sum(weight)",
         [[1.0, -2.0], [0.5, 3.0]], [[0.0, 0.0], [1.0, 1.0]], weight=[[1.0, 3.0], [0.5, 0.0]]),
    edge("zero-weight-inf", "a weight of 0 on an infinite residual: the term is 0 (times rule)",
         [[INF, 1.0]], [[0.0, 0.0]], weight=[[0.0, 1.0]], reduction="sum"),
    # issue 19, the whole input domain: an integer target where floats are documented
    edge("int-target", "an int64 target [1, 0, 3]: promoted (PyTorch, JAX) or cast (Keras) to the input's "
                       "dtype; |0.5|, |-0.5|, |-1|, mean 2/3; no gradient with respect to an integer target",
         [1.5, -0.5, 2.0], np.array([1, 0, 3], np.int64)),
    # issue 19, the whole input domain: integer predictions (convention int_inputs)
    edge("int-input", "int64 predictions [2, 0, -1] beside float targets [1.5, 0.5, -1.75]: promoted (PyTorch, "
                      "Keras' classes, tf.compat.v1) to |0.5|, |-0.5|, |0.75|, mean 7/12; Keras' functions cast the "
                      "targets to int64 ([1, 0, -1], slope 0): mean 1/3; optax raises TypeError",
         np.array([2, 0, -1], np.int64), [1.5, 0.5, -1.75], dtypes=("float32",)),
]
# fmt: on

# fmt: off
SQUARED_ERROR = [
    edge("seed-mse", "the Keras docstring example: mean of [0.01, 0.01, 0.04] = 0.02",
         [0.9, 0.1, 0.8], [1.0, 0.0, 1.0]),
    # issue 19, the whole input domain: an integer target where floats are documented
    edge("int-target", "the Keras docstring example with int64 targets [1, 0, 1]: promoted (PyTorch, JAX) or "
                       "cast (Keras) to the input's dtype, 0.02 as with float targets",
         [0.9, 0.1, 0.8], np.array([1, 0, 1], np.int64)),
    # issue 19, the whole input domain: integer predictions (convention int_inputs)
    edge("int-input", "int64 predictions [2, 0, -1] beside float targets [1.5, 0.5, -1.75]: promoted (PyTorch, "
                      "Keras' classes, tf.compat.v1) to 0.25, 0.25, 0.5625, mean 1.0625 / 3; Keras' functions "
                      "cast the targets to int64 ([1, 0, -1], slope 0): mean 1/3; optax raises TypeError",
         np.array([2, 0, -1], np.int64), [1.5, 0.5, -1.75], dtypes=("float32",)),
    edge("zero-residual", "input == target: loss 0 and slope 0 (smooth, no kink)",
         [1.5, -2.0], [1.5, -2.0], reduction="none"),
    edge("square-overflows-f32", "a residual of 2e19: r^2 = 4e38 overflows float32 (inf), float64 holds it",
         [1e19, 1.0], [-1e19, 1.0], reduction="none"),
    edge("square-overflows-f16", "a residual of 300: r^2 = 9e4 overflows float16 (max 65504)",
         [300.0, 1.0], [0.0, 1.0], reduction="none"),
    edge("inf", "an infinite residual: loss inf, slope +-inf",
         [INF, -INF], [0.0, 0.0], reduction="none"),
    edge("nan", "a NaN target propagates",
         [1.0, 2.0], [NAN, 2.0], reduction="none"),
    edge("sample-weight", "Keras: per-sample means [0.01, 0.25] (of (0.1^2 + 0.1^2) / 2, (0.5^2 + 0.5^2) / 2) "
                          "weighted by [2, 0]: sum 0.02 over the weights' sum 2",
         [[0.9, 0.1], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]], sample_weight=[2.0, 0.0],
         reduction="mean_with_sample_weight"),
    edge("weighted-mean", "PyTorch's weighted mse_loss divides the weighted sum by sum(weight)",
         [[1.0, -2.0], [0.5, 3.0]], [[0.0, 0.0], [1.0, 1.0]], weight=[[1.0, 3.0], [0.5, 2.0]]),
]
# fmt: on

# fmt: off
HUBER = [
    edge("keras-doc", "the Keras docstring example: huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) = 0.155",
         [[0.6, 0.4], [0.4, 0.6]], [[0.0, 1.0], [0.0, 0.0]]),
    edge("zero-residual", "r = 0: loss 0, slope 0 (smooth)",
         [0.5, -3.0], [0.5, -3.0], reduction="none"),
    edge("at-delta", "|r| = delta exactly (1 and 0.5, exact in every dtype): both branches give "
                     "delta^2/2 and slope +-delta, whichever side a framework's comparison takes",
         [1.0, -1.0, 0.5, -0.5], [0.0, 0.0, 0.0, 0.0], reduction="none"),
    edge("at-delta-half", "|r| = delta = 0.5: the boundary of a non-default delta",
         [0.5, -0.5, 0.25], [0.0, 0.0, 0.0], reduction="none", delta=0.5),
    edge("delta-zero", "delta = 0: Huber is identically 0, smooth L1 (beta = 0) is L1, PyTorch's "
                       "huber_loss rejects it",
         [1.5, -2.0, 0.0], [0.0, 0.0, 0.0], reduction="none", delta=0.0),
    edge("delta-negative", "delta < 0 has no meaning: PyTorch raises for both forms",
         [1.5, -2.0], [0.0, 0.0], reduction="none", delta=-1.0),
    edge("huge-residual", "residual 1e30: the linear branch delta (|r| - delta/2), no square to overflow",
         [1e30, -1e30], [0.0, 0.0], reduction="none"),
    edge("huge-delta", "delta 1e4: a residual of 100 stays quadratic (r^2 = 1e4 fits float16)",
         [100.0, -100.0], [0.0, 0.0], reduction="none", delta=1e4),
    edge("inf", "an infinite residual: the linear branch gives inf, slope +-delta",
         [INF, -INF], [0.0, 0.0], reduction="none"),
    edge("nan", "a NaN input propagates",
         [NAN, 0.5], [0.0, 0.0], reduction="none"),
    edge("weighted-mean", "PyTorch's weighted huber_loss takes a plain mean of the weighted terms "
                          "(unlike l1_loss and mse_loss, which divide by sum(weight))",
         [[1.0, -2.0], [0.5, 3.0]], [[0.0, 0.0], [1.0, 1.0]], weight=[[1.0, 3.0], [0.5, 2.0]]),
]
# fmt: on

# fmt: off
LOG_COSH = [
    edge("keras-doc", "the Keras docstring example: log_cosh([[0, 1], [0, 0]], [[1, 1], [0, 0]]) = 0.108",
         [[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]),
    edge("zero-residual", "r = 0: loss 0 (log cosh 0 = 0, exactly, or log 2 - log 2), slope 0",
         [0.5, -3.0], [0.5, -3.0], reduction="none"),
    edge("small-residual", "r = 1e-3: log cosh r = r^2/2 - r^4/12; the forms log(e^r + e^-r) - log 2 "
                           "cancel all but a few digits of log 2",
         [1e-3, -1e-3, 1e-2], [0.0, 0.0, 0.0], reduction="none"),
    edge("large-residual", "r = +-100: cosh overflows nothing if written |r| + softplus(-2|r|) - log 2",
         [100.0, -100.0], [0.0, 0.0], reduction="none"),
    edge("huge-residual", "r = +-1e30: exp(2r) overflows every dtype, log cosh r = |r| - log 2 = |r|",
         [1e30, -1e30], [0.0, 0.0], reduction="none"),
    edge("inf", "r = +-inf: log cosh is +inf on both sides, slope +-1",
         [INF, -INF], [0.0, 0.0], reduction="none"),
    edge("nan", "a NaN input propagates",
         [NAN, 0.5], [0.0, 0.0], reduction="none"),
]
# fmt: on

# fmt: off
MEAN_ABSOLUTE_PERCENTAGE_ERROR = [
    edge("zero-target", "y = 0: Keras divides by max(|y|, 1e-7), 100 |x| / 1e-7 (overflows float16)",
         [[0.5, 0.0], [2e-6, 1.0]], [[0.0, 0.0], [0.0, 2.0]], reduction="none"),
    edge("zero-residual", "x = y: loss 0, slope 0 (the kink of |r|)",
         [2.0, -0.5], [2.0, -0.5], reduction="none"),
    edge("negative-target", "|y| in the denominator: a negative target counts by its magnitude",
         [-1.0, 1.0], [-2.0, -4.0], reduction="none"),
    edge("target-at-eps-f32", "|y| = 1e-7 (float32) exactly: a tie in max(|y|, eps); its slope in y "
                              "is the frameworks' tie rule",
         [1.0, 1.0], [F32_EPS7, -F32_EPS7], reduction="none", dtypes=("float32",)),
    edge("tiny-target", "|y| = 1e-9 < eps: clamped, no slope through the denominator",
         [1.0], [1e-9], reduction="none"),
    edge("inf-input", "an infinite input: 100 * inf / |y| = inf",
         [INF, 1.0], [1.0, 1.0], reduction="none"),
    edge("nan", "a NaN target propagates",
         [1.0, 1.0], [NAN, 1.0], reduction="none"),
]
# fmt: on

# fmt: off
MEAN_SQUARED_LOGARITHMIC_ERROR = [
    edge("zero", "x = y = 0: Keras raises both to 1e-7, the loss is 0",
         [0.0, 0.0], [0.0, 1.0], reduction="none"),
    edge("negative", "negative values are raised to 1e-7 by Keras (plain: log1p(-0.5), log1p(-2) = nan)",
         [-0.5, -2.0, 1.0], [1.0, 0.5, -3.0], reduction="none"),
    edge("minus-one", "x = -1: plain log1p(-1) = -inf; Keras reads 1e-7",
         [-1.0], [1.0], reduction="none"),
    edge("at-eps-f32", "x = 1e-7 (float32), then y = 1e-7: a tie in max(v, eps), whose slope is "
                       "passed whole (TensorFlow) or halved (torch.maximum, jnp.maximum)",
         [F32_EPS7, 2.0], [0.5, F32_EPS7], reduction="none", dtypes=("float32",)),
    edge("small", "values near 1e-6: log(1 + x) written with '+ 1' loses x's relative digits in "
                  "float32 (the squared difference stays below atol)",
         [1e-6, 3e-6], [2e-6, 1e-6], reduction="none"),
    edge("large", "values of 1e30: log1p(1e30) = 69.08, no overflow",
         [1e30, 1.0], [1.0, 1e30], reduction="none"),
    edge("inf", "an infinite input: log(inf) = inf, the loss inf",
         [INF, 1.0], [1.0, 1.0], reduction="none"),
    edge("nan", "a NaN input: NumPy's and the frameworks' max(nan, eps) propagate NaN",
         [NAN, 1.0], [1.0, 1.0], reduction="none"),
]
# fmt: on

# fmt: off
L2_LOSS = [
    edge("seed", "tf.nn.l2_loss([1, 2, 3]) = (1 + 4 + 9) / 2 = 7",
         [1.0, 2.0, 3.0], reduction="sum"),
    edge("zeros", "a zero tensor: 0 and slope 0",
         [0.0, 0.0], reduction="sum"),
    edge("square-overflows-f32", "t = 2e19: t^2 overflows float32",
         [2e19, 1.0], reduction="sum"),
    edge("inf", "an infinite entry: inf",
         [INF, 1.0], reduction="sum"),
    edge("nan", "a NaN entry propagates",
         [NAN, 1.0], reduction="sum"),
    edge("empty", "an empty tensor: the sum of nothing is 0",
         np.zeros((0,)), reduction="sum"),
]
# fmt: on

# fmt: off
MEAN_PAIRWISE_SQUARED_ERROR = [
    edge("docstring-pairs", "the docstring's three pairs of one sample: labels [0, 0.5, 1], predictions [1, 1, 1], "
                            "(0.25 + 1 + 0.25) / 3 = 0.5 (tensorflow/tensorflow#15968)",
         [[1.0, 1.0, 1.0]], [[0.0, 0.5, 1.0]]),
    edge("two-samples", "pairs within each sample, not across: residuals [0, 1, 2] and [1, 0, 2] give 2 and 2, "
                        "summed 4.0",
         [[1.0, 3.0, 5.0], [1.0, 0.0, 2.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
    edge("per-sample-weights", "weights [[1], [2]] scale each sample's mean: 2 + 2 * 2 = 6.0",
         [[1.0, 3.0, 5.0], [1.0, 0.0, 2.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], sample_weight=[[1.0], [2.0]]),
    edge("element-weights-zero", "a zero weight leaves n = 2 in the first sample (its residuals still summed): "
                                 "(10 - 9) times its weights' sum 2, plus 2 times 3: 8.0",
         [[1.0, 3.0, 5.0], [1.0, 0.0, 2.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]],
         sample_weight=[[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),
    edge("batch-size-weights", "the documented [batch_size] weights for a batch of rank 2: assert_broadcastable "
                               "refuses them (ValueError: weights.rank=1, values.rank=2)",
         [[1.0, 3.0, 5.0], [1.0, 0.0, 2.0]], [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], sample_weight=[1.0, 2.0]),
    edge("one-element-samples", "samples of one element have no pair: each mean is 0/0 = 0 (div_no_nan)",
         [[1.0], [4.0], [-2.0]], [[0.0], [0.0], [0.0]]),
    edge("shifted-residuals", "residuals all equal within a sample (the prediction shifted by 3): every pair's "
                              "difference is 0, the loss 0",
         [[3.0, 4.0, 5.0, 6.0], [0.0, 1.0, 2.0, 3.0]], [[0.0, 1.0, 2.0, 3.0], [-3.0, -2.0, -1.0, 0.0]]),
    edge("zero-weights", "all weights 0: nothing is present, the loss is 0",
         [[1.0, 3.0], [1.0, 0.0]], [[1.0, 2.0], [0.0, 0.0]], sample_weight=[[0.0, 0.0], [0.0, 0.0]]),
]
# fmt: on


# ----------------------------------------------------------------------------- specs

_RED = {"reduction": "mean"}
_SAMPLE = ("sample_axis",)

# fmt: off
SPECS: list[Spec] = [
    Spec("absolute_error", "absolute error |input - target|, elementwise",
         reg.absolute_error, {"weight": None, **_RED}, (*_SAMPLE, "mean_by", "abs_zero_slope", "flush_subnormals"),
         residuals(weights=True, int_targets=True), ABSOLUTE_ERROR, classes=False, gradient=reg.absolute_error_grad),
    Spec("squared_error", "squared error (input - target)^2, elementwise",
         reg.squared_error, {"weight": None, **_RED}, (*_SAMPLE, "mean_by", "half_square"),
         residuals(weights=True, int_targets=True), SQUARED_ERROR, classes=False, gradient=reg.squared_error_grad,
         error_model=reg.squared_error_error, stages=reg.SQUARED_ERROR_STAGES),
    Spec("huber", "Huber loss: r^2/2 for |r| <= delta, delta (|r| - delta/2) beyond",
         reg.huber, {"delta": 1.0, "weight": None, **_RED},
         (*_SAMPLE, "mean_by", "huber_form", "nonpositive_delta"),
         residuals(weights=True, delta=True), HUBER, classes=False, gradient=reg.huber_grad),
    Spec("log_cosh", "log(cosh(input - target)), elementwise",
         reg.log_cosh, dict(_RED), _SAMPLE,
         residuals(lo=-20, hi=20), LOG_COSH, classes=False, gradient=reg.log_cosh_grad,
         error_model=reg.log_cosh_error, stages=reg.LOG_COSH_STAGES),
    Spec("mean_absolute_percentage_error", "100 |target - input| / |target|, elementwise",
         reg.mean_absolute_percentage_error, dict(_RED), (*_SAMPLE, "denominator_eps", "floor_tie", "abs_zero_slope"),
         residuals(away_from_zero=0.01, relative=True), MEAN_ABSOLUTE_PERCENTAGE_ERROR, classes=False,
         gradient=reg.mean_absolute_percentage_error_grad,
         error_model=reg.mean_absolute_percentage_error_error, stages=reg.MAPE_STAGES),
    Spec("mean_squared_logarithmic_error", "(log(1 + input) - log(1 + target))^2, elementwise",
         reg.mean_squared_logarithmic_error, dict(_RED), (*_SAMPLE, "value_floor", "floor_tie"),
         residuals(lo=0.0, hi=20.0), MEAN_SQUARED_LOGARITHMIC_ERROR, classes=False,
         gradient=reg.mean_squared_logarithmic_error_grad,
         error_model=reg.mean_squared_logarithmic_error_error, stages=reg.MSLE_STAGES),
    Spec("l2_loss", "squared L2 norm of one tensor, sum t^2 (no target)",
         reg.l2_loss, {"reduction": "sum"}, ("half_square",),
         one_tensor(), L2_LOSS, target=None, classes=False, gradient=reg.l2_loss_grad),
    Spec("mean_pairwise_squared_error", "mean over each sample's element pairs of the squared difference of "
         "their residuals, times its weights, summed over the batch",
         reg.mean_pairwise_squared_error, {"sample_weight": None}, (),
         pairwise(), MEAN_PAIRWISE_SQUARED_ERROR, classes=False, gradient=reg.mean_pairwise_squared_error_grad,
         error_model=reg.mean_pairwise_squared_error_error, stages=reg.PAIRWISE_STAGES),
]

#: The specs whose Keras classes take ``sample_weight`` (``bindings.keras_sample_weight``): Keras
#: averages each sample's last axis (``sample_axis="mean"``), then weights the per-sample losses.
KERAS_WEIGHTED = (
    "absolute_error",
    "squared_error",
    "huber",
    "log_cosh",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
)
SPECS = [keras_sample_weight(s) if s.name in KERAS_WEIGHTED else s for s in SPECS]
#: The specs whose edge rows give an integer target (issue 19): each binding's documented outcome is
#: its ``int_targets`` convention (plain: promoted to the input's dtype).
INT_TARGETS = ("absolute_error", "squared_error")
SPECS = [integer_target_spec(s) if s.name in INT_TARGETS else s for s in SPECS]
# fmt: on


# ----------------------------------------------------------------------------- bindings
# Each framework's APIs of these specs (``conformance/bindings.py`` says how they are declared).

_NONPOS = {"nonpositive_delta": "RuntimeError"}  # torch's huber_loss: delta > 0; smooth_l1_loss: beta >= 0

_PER_SAMPLE = {"sample_axis": "mean"}  # keras' regression losses average the last axis, both forms
_HALF_TIE = {"torch": {"floor_tie": "half"}, "jax": {"floor_tie": "half"}}  # maximum's slope at a tie
_LOG_COSH_STAGES = {
    "jax": ("softplus_form",),
    "torch": ("softplus_form",),
    "numpy": ("softplus_form",),
    "tensorflow": ("softplus_form", "eigen_softplus"),
}
# jax's |u| has slope +1 at u = 0; Keras writes u = y - x. XLA and TensorFlow on CPU flush float32 subnormals
# (openxla/xla#22858): a subnormal residual is a zero one
_JAX_ABS = {"jax": {"abs_zero_slope": -1.0, "flush_subnormals": True}, "tensorflow": {"flush_subnormals": True}}

# fmt: off
BINDINGS: list[Binding] = [
    # -- torch --
    # l1_loss and mse_loss take an elementwise weight (functional form only) and divide a
    # weighted 'mean' by sum(weight); huber_loss's weighted 'mean' is a plain mean of the terms.
    Binding("torch.nn.functional.l1_loss", "absolute_error", "torch", "F.l1_loss(input, target{kw})",
            params={**REDUCTION, "weight": "weight"}, conventions={"mean_by": "weights"}),
    Binding("torch.nn.L1Loss", "absolute_error", "torch", "torch.nn.L1Loss({kw})(input, target)",
            params=REDUCTION),
    # the residual is rounded to the input dtype before its square: ATen's mse kernel (diff * diff), the
    # weighted form's pow(input - target, 2) * weight (torch/nn/functional.py, mse_loss)
    Binding("torch.nn.functional.mse_loss", "squared_error", "torch", "F.mse_loss(input, target{kw})",
            params={**REDUCTION, "weight": "weight"}, conventions={"mean_by": "weights"},
            stages=reg.SQUARED_ERROR_STAGES),
    Binding("torch.nn.MSELoss", "squared_error", "torch", "torch.nn.MSELoss({kw})(input, target)",
            params=REDUCTION, stages=reg.SQUARED_ERROR_STAGES),
    Binding("torch.nn.functional.huber_loss", "huber", "torch", "F.huber_loss(input, target{kw})",
            params={**REDUCTION, "delta": "delta", "weight": "weight"}, conventions=_NONPOS),
    Binding("torch.nn.HuberLoss", "huber", "torch", "torch.nn.HuberLoss({kw})(input, target)",
            params={**REDUCTION, "delta": "delta"}, conventions=_NONPOS),
    *torch_pair("smooth_l1_loss", "SmoothL1Loss", "huber", params={**REDUCTION, "delta": "beta"},
                conventions={"huber_form": "smooth_l1", **_NONPOS}),
    # -- tensorflow (tf.nn) --
    Binding("tf.nn.l2_loss", "l2_loss", "tensorflow", "tf.nn.l2_loss(input)",
            fixed={"reduction": "sum"}, conventions={"half_square": True}),
    # -- tensorflow (tf.compat.v1.losses: weights and reductions, bindings.tf_v1_loss) --
    # These cast predictions and labels to float32 first (losses_impl.py), so they compute in and return
    # float32 whatever the inputs' dtype (computes_in). absolute_difference: abs(predictions - labels); the
    # CPU flushes a subnormal float32 residual (openxla/xla#22858, as tf.nn's ops)
    tf_v1_loss("absolute_difference", "absolute_error", "labels", "predictions",
               conventions={"flush_subnormals": True}, computes_in="float32"),
    tf_v1_loss("mean_squared_error", "squared_error", "labels", "predictions", computes_in="float32"),
    # 0.5 * min(|r|, delta)^2 + delta * (|r| - min(|r|, delta)): Huber's two zones, delta not checked
    tf_v1_loss("huber_loss", "huber", "labels", "predictions", params={"delta": "delta"}, computes_in="float32"),
    # Its own weights and no reduction (reference/regression.py); float32 like the others
    Binding(f"{TF_V1}.mean_pairwise_squared_error", "mean_pairwise_squared_error", "tensorflow",
            f"{TF_V1}.mean_pairwise_squared_error(labels=target, predictions=input{{kw}})",
            params={"sample_weight": "weights"}, computes_in="float32", stages=reg.PAIRWISE_STAGES,
            min_rank=1),  # documented for [batch_size, d0, ... dN]: a 0-d input is no batch
    # -- jax (optax.losses) --
    # optax's regression losses are elementwise and never reduce; `targets` defaults to None,
    # documented as a zero target: the no-target calls are bound to the l2_loss spec.
    # (predictions - targets)^2 in the input dtype (optax/losses/_regression.py at v0.2.8)
    optax_loss("squared_error", "squared_error", stages=reg.SQUARED_ERROR_STAGES),
    optax_loss("l2_loss", "squared_error", conventions={"half_square": True}, stages=reg.SQUARED_ERROR_STAGES),
    Binding(f"{OPTAX}.squared_error", "l2_loss", "jax", f"{OPTAX}.squared_error(input{{kw}})", fixed=NO_REDUCTION),
    Binding(f"{OPTAX}.l2_loss", "l2_loss", "jax", f"{OPTAX}.l2_loss(input{{kw}})",
            fixed=NO_REDUCTION, conventions={"half_square": True}),
    optax_loss("huber_loss", "huber", params={"delta": "delta"}),
    # logaddexp(r, -r) - log(2) in the input dtype, no upcast (optax/losses/_regression.py L133 at v0.2.8)
    optax_loss("log_cosh", "log_cosh", stages=("logaddexp_form",)),
    # -- keras --
    *keras_pair("MeanAbsoluteError", "mean_absolute_error", "absolute_error", conventions=_PER_SAMPLE,
                backends=_JAX_ABS, sample_weight=True),
    *keras_pair("MeanSquaredError", "mean_squared_error", "squared_error", conventions=_PER_SAMPLE,
                stages=reg.SQUARED_ERROR_STAGES, sample_weight=True),  # square(y_true - y_pred) in y_pred's dtype
    *keras_pair("Huber", "huber", "huber", params={"delta": "delta"}, conventions=_PER_SAMPLE, sample_weight=True),
    # x + softplus(-2x) - log2 in y_pred's dtype (keras/src/losses/losses.py L2050-L2055 at v3.15.1):
    # jax.nn.softplus is logaddexp(x, 0); TensorFlow's CPU Softplus kernel thresholds at log(eps) + 2
    *keras_pair("LogCosh", "log_cosh", "log_cosh", conventions=_PER_SAMPLE, stages=_LOG_COSH_STAGES,
                sample_weight=True),
    *keras_pair("MeanAbsolutePercentageError", "mean_absolute_percentage_error", "mean_absolute_percentage_error",
                conventions={**_PER_SAMPLE, "denominator_eps": KERAS_EPS},
                backends={"torch": {"floor_tie": "half"}, "jax": {"floor_tie": "half", "abs_zero_slope": -1.0}},
                stages=reg.MAPE_STAGES, sample_weight=True),  # the quotient, its mean and 100 * mean in y_pred's dtype
    # log(maximum(y, epsilon) + 1.0) (keras/src/losses/losses.py L1912-L1918 at v3.15.1): on JAX the float32
    # epsilon is weakly typed, so the loss stays in y_pred's dtype; TensorFlow and torch promote it to float32
    *keras_pair("MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", "mean_squared_logarithmic_error",
                conventions={**_PER_SAMPLE, "value_floor": KERAS_EPS}, backends=_HALF_TIE,
                stages={"jax": reg.MSLE_STAGES, "tensorflow": (), "torch": ()},  # each backend named: see keras_pair
                sample_weight=True),
]
# fmt: on

# What each binding documents for an integer input (issue 19; convention int_inputs, plain "promote": computed in the
# target's float dtype, as PyTorch's arithmetic promotes, Keras' classes cast y_pred to their float32 dtype and
# tf.compat.v1.losses casts predictions to float32). Keras' loss functions cast y_true to y_pred's dtype
# (keras/src/losses/losses.py, mean_squared_error and mean_absolute_error: convert_to_tensor(y_true,
# dtype=y_pred.dtype)), an integer one; optax's regression losses check for a floating dtype
# (chex.assert_type: TypeError "Expected the input to have a dtype that is a subdtype of floating").
_INT_INPUTS = {
    f"{OPTAX}.squared_error": "TypeError",
    f"{OPTAX}.l2_loss": "TypeError",
    "keras.losses.mean_squared_error": "cast_target",  # on every backend
    "keras.losses.mean_absolute_error": "cast_target",
}
BINDINGS = with_convention(BINDINGS, "int_inputs", _INT_INPUTS, INT_TARGETS)
