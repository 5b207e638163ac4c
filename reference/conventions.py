"""The named conventions: documented choices in which a binding departs from plain mathematics.

Every convention is a keyword argument of the oracle functions that it affects; its
``plain`` value is the textbook mathematics. A binding declares the values it uses
(``adapters/*``), the oracle computes under them, and divergence attribution switches
them one at a time (``conformance/divergence.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    name: str
    plain: object
    meaning: str  # what a non-plain value does; ``{value}`` is replaced by the value

    def describe(self, value) -> str:
        if value == self.plain:
            return f"{self.name}={value!r} (plain mathematics)"
        return f"{self.name}={value!r}: " + self.meaning.format(value=value)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in [
        Convention(
            "log_min",
            None,
            "every log is clamped from below at {value} (PyTorch BCELoss), "
            "so a probability of exactly 0 or 1 costs at most -log_min",
        ),
        Convention(
            "prob_eps",
            None,
            "probabilities are clipped into [{value}, 1 - {value}] in the input dtype "
            "before the log (Keras' backend.epsilon(); 'finfo' is the dtype's machine "
            "epsilon, torch.distributions' clamp_probs)",
        ),
        Convention(
            "log_shift",
            None,
            "{value} is added inside each log, -y log(p + {value}) - (1 - y) log(1 - p + {value}), "
            "instead of a clip (tf.compat.v1.losses.log_loss's epsilon): nothing is clipped, a probability "
            "of 0 or 1 costs at most -log({value}), and the slopes are y / (p + eps) and (1 - y) / (1 - p + eps)",
        ),
        Convention(
            "prob_domain",
            "nan",
            "a probability or target outside [0, 1] (NaN included) raises {value} "
            "(PyTorch's binary_cross_entropy checks its input and its target)",
        ),
        Convention(
            "renormalize",
            None,
            "predicted probabilities are divided by their sum over the class axis, "
            "{value} (Keras categorical_crossentropy before, sparse_ after; "
            "torch.distributions.Categorical before)",
        ),
        Convention(
            "class_axis",
            -1,
            "the class axis of the framework's input is axis {value}; the adapter moves "
            "it, so it never changes a number, only the layout the framework reads",
        ),
        Convention(
            "last_axis_only",
            None,
            "the binding computes along the last axis of its input only, and raises {value} where its "
            "class axis is another: axis 1 of a channels-first input of rank 3 or more (Keras' TensorFlow "
            "backend's sparse_categorical_crossentropy: 'Only axis=-1 is currently supported')",
        ),
        Convention(
            "time_major",
            False,
            "sequences are read time-major, (T, N, C), not (N, T, C); the adapter swaps the "
            "axes, so it never changes a number, only the layout the framework reads (torch CTC)",
        ),
        Convention(
            "sample_axis",
            None,
            "the per-element loss is reduced with '{value}' over the last axis before "
            "the batch reduction (one loss per sample, as Keras and optax return)",
        ),
        Convention(
            "mean_by",
            "elements",
            "'mean' divides by the sum of the weights of the counted elements "
            "(PyTorch cross_entropy and nll_loss with class weights), not by their count",
        ),
        Convention(
            "weighting",
            "keras",
            "sample weights are tf.compat.v1.losses' weights ('{value}', compute_weighted_loss): a scalar or of "
            "the losses' own rank (each extent 1 or the losses', no squeeze or expand), multiplying the "
            "elementwise losses; SUM_BY_NONZERO_WEIGHTS (the default) divides by the number of non-zero "
            "weights, MEAN ('mean_with_sample_weight') by the weights' broadcast sum, SUM_OVER_BATCH_SIZE "
            "('mean') by the number of losses, all with div_no_nan; 'tf_v1_squeeze' first squeezes the last "
            "axis of weights one rank above the losses (sparse_softmax_cross_entropy) (plain: Keras' "
            "reduce_weighted_values)",
        ),
        Convention(
            "label_gradient",
            "flows",
            "the labels pass through tf.stop_gradient ('{value}': tf.compat.v1.nn."
            "softmax_cross_entropy_with_logits, tf.compat.v1.losses.softmax_cross_entropy): their gradient "
            "is 0, where -log softmax(x) is due",
        ),
        Convention(
            "zero_division",
            "nan",
            "a mean over nothing (empty batch, all targets ignored) returns {value} "
            "instead of 0/0 = nan (Keras' divide_no_nan)",
        ),
        Convention(
            "invalid_label",
            "nan",
            "a class index outside [0, C) that is not ignored gives '{value}' "
            "(an exception class name means the binding raises it; 'wrap_negative' reads "
            "-C <= t < 0 as t + C, NumPy-style, and gives nan elsewhere; 'zeros' reads it as an "
            "all-zero one-hot row: a loss of 0 with slope 0, as jax.nn.one_hot gives)",
        ),
        Convention(
            "float_labels",
            "cast",
            "class indices given as a float array raise {value} (the binding documents integer "
            "labels and checks their dtype: PyTorch's cross_entropy and nll_loss, tf.nn's sparse "
            "op, optax's *_with_integer_labels), where the plain reading casts 2.0 to class 2, "
            "truncating toward 0 as Keras' sparse losses cast",
        ),
        Convention(
            "int_targets",
            "promote",
            "a target given as an integer array raises {value} (the binding checks the target's dtype: "
            "PyTorch's binary_cross_entropy and binary_cross_entropy_with_logits, tf.nn's "
            "sigmoid_cross_entropy_with_logits), where the plain reading promotes it and computes in "
            "the input's float dtype (NumPy, JAX, PyTorch's arithmetic; Keras casts y_true to y_pred's dtype)",
        ),
        Convention(
            "int_inputs",
            "promote",
            "an input given as an integer array gives '{value}' ('cast_target': the target is cast to the "
            "input's integer dtype, truncating toward 0, and has no slope: Keras' loss functions cast y_true to "
            "y_pred's dtype; an exception class name means the binding raises it: optax checks for a floating "
            "dtype), where the plain reading promotes it and computes in the target's float dtype (PyTorch's "
            "arithmetic; Keras' classes cast y_pred to their dtype first)",
        ),
        Convention(
            "stirling_cutoff",
            "above_one",
            "the Stirling term of full=True is left out only where 0 <= t <= 1 ('{value}', tf.nn."
            "log_poisson_loss), not wherever t <= 1 (PyTorch's documented rule): a negative "
            "target adds the term, log of a negative number, NaN",
        ),
        Convention(
            "var_clamp_grad",
            "zero",
            "the clamp of the variance at eps is '{value}'d by autograd (PyTorch's "
            "gaussian_nll_loss clamps under no_grad): below eps the slope in var is that of the "
            "loss at var = eps, not 0",
        ),
        Convention(
            "log_softmax_input",
            False,
            "the input is read as logits: a log_softmax over the classes is taken first "
            "(optax, tf.nn.ctc_loss and Keras CTC; PyTorch uses its log_probs as given)",
        ),
        Convention(
            "log_epsilon",
            None,
            "log 0 is replaced by {value} in the CTC forward recursion (optax's log_epsilon, "
            "copied by Keras' JAX backend): every state but the first starts at {value} and a "
            "skip between repeated labels costs {value}, so an impossible alignment gives a "
            "large finite loss (about -k * {value}) instead of +inf",
        ),
        Convention(
            "mean_by_length",
            False,
            "'mean' first divides each sample's loss by its target length (clamped to at "
            "least 1), then averages over the batch (PyTorch ctc_loss)",
        ),
        Convention(
            "ctc_blank",
            "given",
            "the blank is the '{value}' class: the input's class count C minus 1, whatever the blank "
            "parameter (tf.compat.v1.nn.ctc_loss reserves num_classes - 1 for it and takes no blank argument)",
        ),
        Convention(
            "ctc_label_checks",
            None,
            "labels are checked as {value} does: an empty target, or one with more labels than its input "
            "has frames, raises InvalidArgumentError (TensorFlow's CTCLoss kernel) instead of a loss",
        ),
        Convention(
            "ctc_lengths",
            "given",
            "lengths are '{value}': keras.losses.ctc ignores any lengths, reads every frame "
            "(input length T) and counts the labels that are not 0 as the target length",
        ),
        Convention(
            "q_domain",
            None,
            "a generalized cross-entropy q outside (0, 1) raises {value} (Keras' "
            "CategoricalGeneralizedCrossEntropy checks in its constructor; the function form "
            "computes (1 - p^q)/q for any q, NaN at q = 0)",
        ),
        Convention(
            "hinge_kink",
            0.5,
            "at a margin exactly met (max(0, z) at z = 0) the gradient takes {value} of the active "
            "side's slope: 1 for tf.maximum and torch.clamp_min (their first argument wins a tie), "
            "0 for PyTorch's hand-written multi-margin and multilabel-margin kernels (z > 0); "
            "plain 0.5 is jnp.maximum's and torch.maximum's even split",
        ),
        Convention(
            "hinge_labels",
            "signed",
            "'{value}': 'binary_if_all': when every target of the call is 0 or 1 they are read as 2y - 1 "
            "(Keras hinge and squared_hinge convert binary labels to -1/+1), otherwise as given; 'binary': "
            "every target is read as 2y - 1 whatever it is, so a -1 label counts as -3 "
            "(tf.compat.v1.losses.hinge_loss documents 0/1 labels and converts them unconditionally)",
        ),
        Convention(
            "hinge_neg",
            "others",
            "the categorical hinge's negative score is max_c (1 - y_c) x_c over every class, "
            "so a target class competes with a score of 0 (Keras), not only the other classes",
        ),
        Convention(
            "p_values",
            None,
            "a power p outside {{1, 2}} raises {value} (PyTorch's multi_margin_loss supports only those)",
        ),
        Convention(
            "invalid_sign",
            "nan",
            "a target outside {{-1, 1}} gets both terms, x + max(0, margin - x) "
            "(PyTorch's hinge_embedding_loss is written as where(y != 1, ...) + where(y != -1, ...))",
        ),
        Convention(
            "half_square",
            False,
            "the squared term is halved, (x - y)^2 / 2 (Bishop's convention: optax's l2_loss, "
            "tf.nn.l2_loss = sum(t^2) / 2)",
        ),
        Convention(
            "huber_form",
            "huber",
            "'{value}': the Huber loss divided by its delta (PyTorch's smooth L1 with beta = delta: "
            "r^2 / (2 beta) inside, |r| - beta / 2 outside; beta = 0 is the L1 loss, where the "
            "plain Huber loss is 0)",
        ),
        Convention(
            "nonpositive_delta",
            None,
            "a delta out of the documented range raises {value} (PyTorch: huber_loss needs "
            "delta > 0, smooth_l1_loss beta >= 0); plain: delta = 0 gives the limit",
        ),
        Convention(
            "denominator_eps",
            None,
            "the denominator |y| of a percentage error is clamped from below at {value} in the "
            "compute dtype (Keras' backend.epsilon()), so a zero target gives 100 |x| / eps",
        ),
        Convention(
            "value_floor",
            None,
            "predictions and targets are raised to at least {value} before log(1 + v) (Keras' "
            "mean_squared_logarithmic_error): negative values and 0 count as eps, with no slope",
        ),
        Convention(
            "floor_tie",
            "pass",
            "at a tie of max(v, eps) (v exactly eps) the slope is {value}: torch.maximum and "
            "jnp.maximum split it between both arguments, where TensorFlow's Maximum passes it "
            "whole to v (Keras' percentage and squared-log errors on each backend)",
        ),
        Convention(
            "zero_term_slope",
            "limit",
            "the slope in p of a term p log(p / q) at p = 0 is {value}: the framework writes that "
            "term as a constant 0 (a masked assignment, torch.distributions' KL of categoricals; "
            "a select, jax.scipy.special.rel_entr) and differentiates the constant, where the "
            "plain slope is the one-sided limit log p + 1 - log q (-inf unclipped)",
        ),
        Convention(
            "clip_tie",
            "pass",
            "at a bound of a clip (the value exactly eps or 1 - eps) the slope is {value}: "
            "jnp.clip is minimum(maximum(x, lo), hi), and each splits a tie between its two "
            "arguments, so half the gradient reaches x (Keras on JAX; in half precision every "
            "probability of 1 sits on the bound 1 - 1e-7, which rounds to 1); torch.clamp and "
            "tf.clip_by_value pass it whole",
        ),
        Convention(
            "flush_subnormals",
            False,
            "float32 subnormal inputs (and results) read as +-0 (bfloat16's too, computed in "
            "float32): XLA on CPU compiles with denormal-fp-math=preserve-sign and TensorFlow "
            "sets flush-to-zero, so a subnormal residual sits on |r|'s kink and a subnormal "
            "score ties with 0",
        ),
        Convention(
            "abs_zero_slope",
            0.0,
            "at a zero residual |r| has slope {value} in the input, not sign(0) = 0: JAX's abs "
            "has slope +1 at 0 (and -1 at NaN), and Keras writes |y_true - y_pred|",
        ),
        Convention(
            "dice_eps",
            None,
            "{value} is added to the denominator only, rounded to the tensor's dtype (Keras' "
            "backend.epsilon() in dice and tversky): empty masks give 0 / eps, a loss of 1, not 0/0",
        ),
        Convention(
            "smooth_form",
            "dice",
            "'smooth' is added to the intersection and to the Tversky denominator "
            "I + (P - I)/2 + (T - I)/2 ({value} form, optax dice_loss): Dice-form smoothing of 2 * smooth",
        ),
        Convention(
            "overlap_axes",
            "all",
            "with no 'axis', the overlap sums run over every axis but the first and the last "
            "({value}: optax's batch and class axes are kept), not over every axis",
        ),
        Convention(
            "prob_check",
            None,
            "with from_logits=False, predictions whose sums over the class axis are not allclose to 1 "
            "(rtol 1e-5) raise {value} (optax dice losses with apply_softmax=False)",
        ),
        Convention(
            "binary_channel",
            False,
            "a class axis of one is appended unless the last axis already has one entry "
            "(optax binary_dice_loss): every element is its own sigmoid, the last axis is spatial",
        ),
        Convention(
            "weight_eps",
            None,
            "the automatic class weights are 1 / (F_c^2 + {value}), so a class absent from the "
            "target gets a finite weight 1/{value} (optax multiclass_generalized_dice_loss)",
        ),
        Convention(
            "cosine_form",
            "similarity",
            "the binding returns '{value}' of the cosine: 'negative' is -cos (Keras CosineSimilarity, "
            "a loss to minimize), 'distance' is 1 - cos (optax cosine_distance)",
        ),
        Convention(
            "norm_floor",
            None,
            "each vector is divided by max(|x|, {value}), in Keras' form x * min(rsqrt(|x|^2), 1/{value}) "
            "with 1/{value} rounded to the compute dtype (float16's 1e7 is inf: no floor), so a zero "
            "vector has cosine 0",
        ),
        Convention(
            "sq_norm_add",
            None,
            "{value} (rounded to the input dtype) is added to each squared norm before the square "
            "root (PyTorch cosine_embedding_loss's EPSILON = 1e-12), so a zero vector has cosine 0",
        ),
        Convention(
            "sq_norm_eps",
            None,
            "each squared norm is clipped from below at {value} ('finfo': the dtype's machine "
            "epsilon, optax ntxent), so a norm below its square root counts as that root",
        ),
        Convention(
            "distance_eps",
            "difference",
            "eps is added where '{value}' says: 'power_sum' adds it to sum |d|^p before the p-th "
            "root (optax triplet_margin_loss), not to each difference (torch pairwise_distance)",
        ),
        Convention(
            "power_abs",
            True,
            "the differences are raised to the power p without their absolute value "
            "(optax triplet_margin_loss): an odd p gives a signed sum, not a norm, and a "
            "non-integer p a NaN for a negative difference",
        ),
        Convention(
            "margin_domain",
            None,
            "a margin <= 0 raises {value} (PyTorch's triplet margin losses document a margin > 0)",
        ),
        Convention(
            "mean_over",
            None,
            "'mean' divides by the number of {value} losses only (Keras Circle masks the losses "
            "<= 0 in the compute dtype: samples with no positive or no negative)",
        ),
    ]
}
