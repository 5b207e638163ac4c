"""The parameters of the bound APIs deliberately left at their defaults, and why: one table per
framework family (Keras' serves its three backends).

``EXCLUDED[family][key][parameter]`` is the reason. ``key`` is an API's dotted path (the entry
covers every binding of that API: ``keras.losses.Huber``) or one binding's ``spec:id`` without a
Keras backend (``l2_loss:optax.losses.squared_error``) where the API's other bindings give the
parameter a value. ``conformance/parameters.py`` reads the table and ``tests/test_parameters.py``
fails on a parameter that is neither bound nor here, and on an entry gone stale: a parameter the
API no longer has, or one a binding it covers now binds.

Entries are listed API by API; each reason is true of every API it is given to. Parameters that
issue 19 asks to be bound (Keras ``sample_weight`` and ``axis``)
say so, and their entries go when they are bound.
"""

from __future__ import annotations

#: The reason of a parameter issue 19 asks to be bound.
LATER = "not yet bound (issue 19)"

_TORCH_DEPRECATED = (
    "deprecated (PyTorch documents it as 'Deprecated (see reduction)'): an older spelling of reduction, "
    "which is bound and which it overrides when given"
)
_TF_NAME = "names the TensorFlow operation (its name scope in a graph); no effect on values"
_TF_V1_AXIS = (
    "the class axis (dim: its deprecated spelling), left at its default -1, where the canonical layout has it; "
    "another value only moves the class axis (a class axis of 1 is checked on torch's bindings)"
)
_TF_V1_SCOPE = "the name scope of the ops in a graph (ops.name_scope); no effect on values"
_TF_V1_COLLECTION = (
    "the graph collection the loss is added to (util.add_loss); documented as ignored when executing eagerly, "
    "and under tf.function it only records the tensor: no effect on values"
)
_KERAS_NAME = "a label for the loss object (its name in logs and configs); no effect on values"
_KERAS_DTYPE = (
    "the compute dtype (default None: keras.backend.floatx(), float32), declared as the binding's computes_in"
)


def _each(apis: str, **reasons: str) -> dict[str, dict[str, str]]:
    """The same reasons for each of the whitespace-separated ``apis``."""
    return {api: dict(reasons) for api in apis.split()}


def _merged(*tables: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table in tables:
        for key, reasons in table.items():
            out.setdefault(key, {}).update(reasons)
    return out


_TORCH_LOSSES = """
    binary_cross_entropy BCELoss binary_cross_entropy_with_logits BCEWithLogitsLoss cross_entropy CrossEntropyLoss
    nll_loss NLLLoss multilabel_soft_margin_loss MultiLabelSoftMarginLoss kl_div KLDivLoss l1_loss L1Loss mse_loss
    MSELoss smooth_l1_loss SmoothL1Loss poisson_nll_loss PoissonNLLLoss hinge_embedding_loss HingeEmbeddingLoss
    soft_margin_loss SoftMarginLoss multi_margin_loss MultiMarginLoss multilabel_margin_loss MultiLabelMarginLoss
    margin_ranking_loss MarginRankingLoss cosine_embedding_loss CosineEmbeddingLoss triplet_margin_loss
    TripletMarginLoss
"""

TORCH = _merged(
    _each(
        " ".join(("torch.nn.functional." if n[0].islower() else "torch.nn.") + n for n in _TORCH_LOSSES.split()),
        size_average=_TORCH_DEPRECATED,
        reduce=_TORCH_DEPRECATED,
    ),
    _each(
        "softmax_cross_entropy_soft:torch.nn.functional.cross_entropy "
        "softmax_cross_entropy_soft:torch.nn.CrossEntropyLoss",
        ignore_index="PyTorch applies it to class-index targets only; this binding takes class probabilities "
        "(the softmax_cross_entropy binding of the same API binds it)",
    ),
    {
        "torch.distributions.Categorical.entropy": {
            "logits": "the same distribution given by unnormalised log-probabilities instead of probs "
            "(the two are exclusive); the entropy spec is bound through probs",
            "validate_args": "turns the constructor's argument checks on or off (default on unless Python runs "
            "with -O): a check raises on invalid probs, it never changes a value",
        },
        "triplet_margin:torch.nn.functional.triplet_margin_with_distance_loss": {
            "distance_function": "left at its default None, torch.nn.PairwiseDistance(): the Euclidean distance "
            "this binding checks; the binding ...(cosine) passes a cosine distance",
        },
        "torch.nn.TripletMarginWithDistanceLoss": {
            "distance_function": "left at its default None, torch.nn.PairwiseDistance(): a custom distance is "
            "checked on the functional form only (triplet_margin_with_distance_loss(cosine))",
        },
    },
)

TENSORFLOW = _merged(
    _each(
        "tf.nn.sigmoid_cross_entropy_with_logits tf.nn.weighted_cross_entropy_with_logits "
        "tf.nn.softmax_cross_entropy_with_logits tf.nn.sparse_softmax_cross_entropy_with_logits tf.nn.l2_loss "
        "tf.nn.log_poisson_loss tf.nn.ctc_loss",
        name=_TF_NAME,
    ),
    {
        "tf.nn.softmax_cross_entropy_with_logits": {
            "axis": "the class axis, left at its default -1, where the canonical layout has it; another value only "
            "moves the class axis (a class axis of 1 is checked on torch's bindings)",
        },
        "tf.nn.ctc_loss": {
            "unique": "an optional precomputed tf.nn.ctc_unique_labels(labels), documented to enable a faster, "
            "memory-efficient implementation on TPU; the same loss",
        },
    },
    # -- tf.compat.v1 --
    _each(
        "tf.compat.v1.nn.sigmoid_cross_entropy_with_logits tf.compat.v1.nn.weighted_cross_entropy_with_logits "
        "tf.compat.v1.nn.softmax_cross_entropy_with_logits tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2 "
        "tf.compat.v1.nn.sparse_softmax_cross_entropy_with_logits tf.compat.v1.nn.ctc_loss_v2",
        name=_TF_NAME,
    ),
    _each(
        "tf.compat.v1.nn.softmax_cross_entropy_with_logits tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2",
        axis=_TF_V1_AXIS,
        dim=_TF_V1_AXIS,
    ),
    _each(
        "tf.compat.v1.losses.absolute_difference tf.compat.v1.losses.mean_squared_error "
        "tf.compat.v1.losses.huber_loss tf.compat.v1.losses.sigmoid_cross_entropy "
        "tf.compat.v1.losses.softmax_cross_entropy tf.compat.v1.losses.sparse_softmax_cross_entropy "
        "tf.compat.v1.losses.hinge_loss tf.compat.v1.losses.log_loss tf.compat.v1.losses.cosine_distance "
        "tf.compat.v1.losses.mean_pairwise_squared_error",
        scope=_TF_V1_SCOPE,
        loss_collection=_TF_V1_COLLECTION,
    ),
    {
        "tf.compat.v1.nn.weighted_cross_entropy_with_logits": {
            "targets": "deprecated ('targets is deprecated, use labels instead'): the same argument as labels, "
            "which is bound",
        },
        "tf.compat.v1.nn.ctc_loss": {
            "logits": "the alias of inputs (deprecation.deprecated_argument_lookup('logits', logits, 'inputs', "
            "inputs)), which is bound (by position)",
            "time_major": "left at its default True: the adapter passes the canonical input time-major (T, N, C), "
            "the binding's time_major convention; False only transposes a batch-major input first "
            "(ctc_ops.py: array_ops.transpose(inputs, [1, 0, 2])), the layout ctc_loss_v2 is bound with",
            "preprocess_collapse_repeated": "left at False: True merges repeated labels of the target before the "
            "loss, but the kernel checks the uncollapsed length against the frames (labels [1, 1] in one frame "
            "raise InvalidArgumentError 'required: 2, available: 1', TensorFlow 2.21); the ctc spec has no "
            "parameter for the merge, and drawing one would change every CTC binding's generated cases: not "
            "written yet (issue 19)",
            "ctc_merge_repeated": "left at True, the classical CTC of the ctc spec's lattice; False is the documented "
            "'simplified (non-standard) version of CTC' in which repeated non-blank labels are individual labels "
            "(no label state repeats over frames; equal labels need no blank between them): a lattice the "
            "reference does not have yet (issue 19)",
            "ignore_longer_outputs_than_inputs": "left at False: a target longer than its input is the kernel's "
            "InvalidArgumentError (the convention ctc_label_checks='tf_v1'); True gives such a sample loss 0 and "
            "a zero gradient, a convention not written yet (issue 19)",
        },
        "tf.compat.v1.nn.ctc_loss_v2": {
            "unique": "an optional precomputed tf.nn.ctc_unique_labels(labels), documented to enable a faster, "
            "memory-efficient implementation on TPU; the same loss",
        },
        "tf.compat.v1.losses.cosine_distance": {
            "dim": "deprecated ('The old (deprecated) name for axis'): the same argument as axis, which is bound",
        },
        "tf.compat.v1.losses.log_loss": {
            "epsilon": "held at its default 1e-7, the convention log_shift the binding declares (added inside the "
            "logs); the binary_cross_entropy spec has no parameter for it and no other binding shifts its logs",
        },
    },
)

JAX = _merged(
    _each(
        "l2_loss:optax.losses.squared_error l2_loss:optax.losses.l2_loss",
        targets="left at None (zero targets): the l2_loss spec is a loss of the predictions alone; the "
        "squared_error binding of the same API passes targets",
    ),
    _each(
        "dice:optax.losses.dice_loss",
        alpha="Tversky's weight of false positives, left at 0.5, where the loss is Dice; other values are "
        "checked by the tversky binding of the same API",
        beta="Tversky's weight of false negatives, left at 0.5, where the loss is Dice; other values are "
        "checked by the tversky binding of the same API",
    ),
    _each(
        "optax.losses.ctc_loss optax.losses.ctc_loss_with_forward_probs",
        log_epsilon="the finite stand-in for log(0) in the forward recursion, left at its default -1e5, which "
        "the binding declares as its log_epsilon convention (the oracle's lattice takes that value); not varied",
    ),
)

#: Keras loss classes; each binds its call's sample_weight but Circle (its entry below says why).
_KERAS_CLASSES = """
    BinaryCrossentropy CategoricalCrossentropy SparseCategoricalCrossentropy MeanAbsoluteError
    MeanSquaredError Huber LogCosh MeanAbsolutePercentageError MeanSquaredLogarithmicError
    KLDivergence Poisson BinaryFocalCrossentropy CategoricalFocalCrossentropy CategoricalGeneralizedCrossEntropy
    Hinge SquaredHinge CategoricalHinge CosineSimilarity Circle Dice Tversky CTC
"""
# The channels-last bindings (spec:id) of the Keras APIs with a class axis; each has a channels-first twin
_KERAS_AXIS = """
    binary_cross_entropy:keras.losses.BinaryCrossentropy binary_cross_entropy:keras.losses.binary_crossentropy
    binary_cross_entropy_with_logits:keras.losses.BinaryCrossentropy
    binary_cross_entropy_with_logits:keras.losses.binary_crossentropy
    binary_focal_cross_entropy:keras.losses.BinaryFocalCrossentropy
    binary_focal_cross_entropy:keras.losses.binary_focal_crossentropy
    binary_focal_cross_entropy_with_logits:keras.losses.BinaryFocalCrossentropy
    binary_focal_cross_entropy_with_logits:keras.losses.binary_focal_crossentropy
    categorical_cross_entropy:keras.losses.CategoricalCrossentropy
    categorical_cross_entropy:keras.losses.categorical_crossentropy
    categorical_focal_cross_entropy:keras.losses.CategoricalFocalCrossentropy
    categorical_focal_cross_entropy:keras.losses.categorical_focal_crossentropy
    softmax_cross_entropy:keras.losses.SparseCategoricalCrossentropy
    softmax_cross_entropy:keras.losses.sparse_categorical_crossentropy
    softmax_cross_entropy_soft:keras.losses.CategoricalCrossentropy
    softmax_cross_entropy_soft:keras.losses.categorical_crossentropy
    sparse_categorical_cross_entropy:keras.losses.SparseCategoricalCrossentropy
    sparse_categorical_cross_entropy:keras.losses.sparse_categorical_crossentropy
"""
# Their forms with per-class factors along the last axis, which have no channels-first twin
_KERAS_AXIS_LAST = """
    categorical_focal_cross_entropy:keras.losses.CategoricalFocalCrossentropy+alpha_list
    categorical_focal_cross_entropy:keras.losses.categorical_focal_crossentropy+alpha_list
    softmax_cross_entropy:keras.losses.SparseCategoricalCrossentropy+class_weight
"""

KERAS = _merged(
    _each(
        " ".join(f"keras.losses.{n}" for n in _KERAS_CLASSES.split()),
        name=_KERAS_NAME,
        dtype=_KERAS_DTYPE,
    ),
    _each(
        "keras.losses.Circle",
        sample_weight=LATER + ": not expressible through bindings.keras_sample_weight, for two reasons. (1) Its "
        "gradient wrapper (reference/reduction.py, sample_weighted_grad) multiplies each sample's own slopes by that "
        "sample's cotangent, exact only where loss i reads row i alone; Circle's loss i reads every row (each "
        "sample's positives and negatives are the other rows), so the weights must enter circle_grad's own "
        "cotangent (g * sigmoid(p + n), reference/embedding.py) instead. (2) Circle marks its losses with a Keras "
        "mask (loss > 0, backend.set_keras_mask), which Keras merges into sample_weight (keras/src/losses/loss.py, "
        "apply_mask): under sum_over_batch_size the weighted sum is divided by the count of positive losses, not "
        "of samples; under mean_with_sample_weight by the sum of the masked weights. keras_reduce takes no mask, "
        "and the unweighted mask lives in circle's own reduce (mean_over='positive'): binding it needs keras_reduce "
        "to take that mask (one home for both), then circle and circle_grad to take sample_weight",
    ),
    {
        "softmax_cross_entropy:keras.losses.SparseCategoricalCrossentropy+class_weight": {
            "ignore_class": "the class-weight binding takes cases without ignored labels (Keras' mask merged "
            "with the gathered sample_weight is not modelled); SparseCategoricalCrossentropy's own binding "
            "checks ignore_class"
        }
    },
    _each(
        _KERAS_AXIS,
        axis="the class axis (BinaryCrossentropy's: the mean axis), left at -1 here, where the canonical layout "
        "has it; the channels-first binding of the same API and spec (id +channels_first: "
        "bindings.keras_channels_first) passes axis=1 with the class axis 1, on inputs of rank 2 or more (an "
        "unbatched (C,) input has no axis 1), as torch reads it; other values only move the class axis again",
    ),
    _each(
        _KERAS_AXIS_LAST,
        axis="the class axis, left at -1: this form's per-class factors (the alpha list, the class weights "
        "gathered by the labels) are laid along the last axis; the API's plain binding and its channels-first "
        "twin check the axis",
    ),
    _each(
        "circle:keras.losses.circle",
        ref_labels="labels of reference embeddings the batch is compared against, left at None (the batch "
        "itself, which the circle spec compares); the circle_ref binding of the same API passes them",
        ref_embeddings="reference embeddings the batch is compared against, left at None (the batch itself, "
        "which the circle spec compares); the circle_ref binding of the same API passes them",
    ),
)

#: framework family -> key (an API path, or one binding's ``spec:id``) -> parameter -> why it is not bound.
EXCLUDED: dict[str, dict[str, dict[str, str]]] = {
    "torch": TORCH,
    "tensorflow": TENSORFLOW,
    "jax": JAX,
    "keras": KERAS,
}
