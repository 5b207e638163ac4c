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
            "log_min", None,
            "every log is clamped from below at {value} (PyTorch BCELoss), "
            "so a probability of exactly 0 or 1 costs at most -log_min",
        ),
        Convention(
            "prob_eps", None,
            "probabilities are clipped into [{value}, 1 - {value}] in the input dtype "
            "before the log (Keras' backend.epsilon(); 'finfo' is the dtype's machine "
            "epsilon, torch.distributions' clamp_probs)",
        ),
        Convention(
            "prob_domain", "nan",
            "a probability outside [0, 1] (NaN included) raises {value} "
            "(PyTorch's binary_cross_entropy checks its input)",
        ),
        Convention(
            "renormalize", None,
            "predicted probabilities are divided by their sum over the class axis, "
            "{value} (Keras categorical_crossentropy before, sparse_ after; "
            "torch.distributions.Categorical before)",
        ),
        Convention(
            "class_axis", -1,
            "the class axis of the framework's input is axis {value}; the adapter moves "
            "it, so it never changes a number, only the layout the framework reads",
        ),
        Convention(
            "time_major", False,
            "sequences are read time-major, (T, N, C), not (N, T, C); the adapter swaps the "
            "axes, so it never changes a number, only the layout the framework reads (torch CTC)",
        ),
        Convention(
            "sample_axis", None,
            "the per-element loss is reduced with '{value}' over the last axis before "
            "the batch reduction (one loss per sample, as Keras and optax return)",
        ),
        Convention(
            "mean_by", "elements",
            "'mean' divides by the sum of the weights of the counted elements "
            "(PyTorch cross_entropy and nll_loss with class weights), not by their count",
        ),
        Convention(
            "zero_division", "nan",
            "a mean over nothing (empty batch, all targets ignored) returns {value} "
            "instead of 0/0 = nan (Keras' divide_no_nan)",
        ),
        Convention(
            "invalid_label", "nan",
            "a class index outside [0, C) that is not ignored gives '{value}' "
            "(an exception class name means the binding raises it; 'wrap_negative' reads "
            "-C <= t < 0 as t + C, NumPy-style, and gives nan elsewhere)",
        ),
        Convention(
            "stirling_cutoff", "above_one",
            "the Stirling term of full=True is left out only where 0 <= t <= 1 ('{value}', tf.nn."
            "log_poisson_loss), not wherever t <= 1 (PyTorch's documented rule): a negative "
            "target adds the term, log of a negative number, NaN",
        ),
        Convention(
            "var_clamp_grad", "zero",
            "the clamp of the variance at eps is '{value}'d by autograd (PyTorch's "
            "gaussian_nll_loss clamps under no_grad): below eps the slope in var is that of the "
            "loss at var = eps, not 0",
        ),
    ]
}

