"""PyTorch: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

Conventions are taken from the PyTorch documentation of each loss (2.x):
BCELoss clamps each log at -100; ``cross_entropy``/``nll_loss`` put classes on dim 1,
ignore ``-100`` by default, divide a weighted ``mean`` by the sum of the targets' weights,
and raise ``IndexError`` ("Target N is out of bounds") for an invalid class index.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters.base import FrameworkAdapter, py_literal
from lossparity.core.model import Binding


class TorchAdapter(FrameworkAdapter):
    framework = "torch"
    module = "torch"
    imports = "import numpy as np\nimport torch\nimport torch.nn.functional as F\n"
    modes = ("eager", "compile")
    opt_in_modes = ("compile",)  # compiling is slow: run only when asked for

    def to_framework(self, array, dtype):
        torch = self.namespace()["torch"]
        if array.dtype.kind == "f":
            return torch.tensor(array, dtype=getattr(torch, dtype), device=self.device)
        return torch.tensor(array, dtype=torch.int64, device=self.device)

    def literal(self, name, array, dtype):
        kind = f"torch.{dtype}" if array.dtype.kind == "f" else "torch.int64"
        where = "" if self.device == "cpu" else f", device={self.device!r}"
        text = f"torch.tensor({py_literal(array)}, dtype={kind}{where})"
        if array.size == 0 and array.ndim != 1:
            text += f".reshape{tuple(array.shape)}"
        return f"{name} = {text}"

    def to_numpy(self, result):
        return result.detach().to("cpu").double().numpy(), str(result.dtype).removeprefix("torch.")

    def device_unavailable(self):
        if self.device == "cuda" and not self.namespace()["torch"].cuda.is_available():
            return "torch.cuda.is_available() is False: no CUDA device or a CPU-only build"
        return super().device_unavailable() if self.device not in ("cpu", "cuda") else None

    def settings(self):
        if self.device == "cpu":
            return ""
        return (f"torch.backends.cuda.matmul.allow_tf32 = {self.tf32}\n"
                f"torch.backends.cudnn.allow_tf32 = {self.tf32}\n")

    def print_statement(self, name):
        return f"print({name}.detach().double().tolist())"  # NumPy has no bfloat16 of torch's

    def public_losses(self):
        """``torch.nn`` loss modules (``_Loss`` subclasses, and classes named ``*Loss``) and the
        ``torch.nn.functional`` losses (``*_loss``, ``*cross_entropy*``, ``kl_div``)."""
        import inspect

        torch, F = self.namespace()["torch"], self.namespace()["F"]
        base = torch.nn.modules.loss._Loss
        modules = [n for n in dir(torch.nn) if not n.startswith("_") and inspect.isclass(getattr(torch.nn, n))
                   and (issubclass(getattr(torch.nn, n), base) or n.endswith("Loss"))]
        functions = [n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))
                     and (n.endswith("_loss") or "cross_entropy" in n or n == "kl_div")]
        return [f"torch.nn.{n}" for n in modules] + [f"torch.nn.functional.{n}" for n in functions]

    def compilations(self, functions):
        """Graphs ``torch.compile`` has compiled in this process (the opt-in ``compile`` mode)."""
        fn = functions.get("loss_fn")
        if not hasattr(fn, "_torchdynamo_orig_callable"):
            return 0
        from torch._dynamo.utils import counters

        return counters["stats"]["unique_graphs"]

    def program(self, args, wrt, mode):
        sig, ws = ", ".join(args), ", ".join(wrt)
        lines = ["loss_fn = torch.compile(loss_fn)"] if mode == "compile" else []
        if not wrt:
            return "\n".join(lines) + "\n"
        lines += [f"def value_and_grad({sig}):"]
        lines += [f"    {n}.requires_grad_(True)" for n in wrt]
        lines += [f"    loss = loss_fn({sig})",
                  "    if not loss.requires_grad:  # the loss does not depend on them at all",
                  f"        return loss, [torch.zeros_like(x) for x in ({ws},)]",
                  f"    grads = torch.autograd.grad(loss.sum(), ({ws},), materialize_grads=True)",
                  "    return loss.detach(), list(grads)"]
        return "\n".join(lines) + "\n"


ADAPTER = TorchAdapter()

_CE = dict(class_axis=1, mean_by="weights", invalid_label="IndexError")


def _pair(fn: str, module: str, spec: str, **kw) -> list[Binding]:
    """The functional form and the module form of one loss share everything but the call."""
    return [
        Binding(f"torch.nn.functional.{fn}", spec, "torch", f"F.{fn}(input, target{{kw}})", **kw),
        Binding(f"torch.nn.{module}", spec, "torch", f"torch.nn.{module}({{kw}})(input, target)", **kw),
    ]


_RED = {"reduction": "reduction"}
# ctc (reference/ctc.py)
_CTC = dict(
    params={"reduction": "reduction", "blank": "blank", "zero_infinity": "zero_infinity"},
    # log_probs are (T, N, C); 'mean' divides each loss by its target length (clamped to 1)
    # before the batch mean (torch.nn.functional.ctc_loss documentation).
    conventions={"time_major": True, "mean_by_length": True},
    # The ATen CTC kernels dispatch float and double only ("ctc_loss_cpu" not implemented for 'Half').
    dtypes=("float64", "float32"),
)

# regression (reference/regression.py)
_NONPOS = {"nonpositive_delta": "RuntimeError"}  # huber_loss: delta > 0; smooth_l1_loss: beta >= 0

# embedding (reference/embedding.py)
_TRIPLET = {"margin": "margin", "swap": "swap", "reduction": "reduction"}
_POSITIVE_MARGIN = {"margin_domain": "ValueError"}

BINDINGS: list[Binding] = [
    *_pair("binary_cross_entropy", "BCELoss", "binary_cross_entropy",
           params={**_RED, "weight": "weight"},
           conventions={"log_min": -100.0, "prob_domain": "RuntimeError"}),
    *_pair("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
           params={**_RED, "weight": "weight", "pos_weight": "pos_weight"}),
    *_pair("cross_entropy", "CrossEntropyLoss", "softmax_cross_entropy",
           params={**_RED, "weight": "weight", "ignore_index": "ignore_index",
                   "label_smoothing": "label_smoothing"},
           defaults={"ignore_index": -100}, conventions=_CE),
    *_pair("cross_entropy", "CrossEntropyLoss", "softmax_cross_entropy_soft",
           params={**_RED, "weight": "weight", "label_smoothing": "label_smoothing"},
           conventions={"class_axis": 1}),
    *_pair("nll_loss", "NLLLoss", "nll_loss",
           params={**_RED, "weight": "weight", "ignore_index": "ignore_index"},
           defaults={"ignore_index": -100}, conventions=_CE),
    *_pair("kl_div", "KLDivLoss", "kl_div", params={**_RED, "log_target": "log_target"}),
    Binding("torch.distributions.Categorical.entropy", "entropy", "torch",
            "torch.distributions.Categorical(probs=input).entropy()",
            conventions={"renormalize": "before", "prob_eps": "finfo"}),
    Binding("torch.distributions.kl.kl_divergence", "kl_divergence", "torch",
            "torch.distributions.kl.kl_divergence(torch.distributions.Categorical(probs=target), "
            "torch.distributions.Categorical(probs=input))",
            conventions={"renormalize": "before", "prob_eps": "finfo"}),
    # -- likelihood (reference/likelihood.py) --
    # The Poisson NLL: log_input defaults to True and eps to 1e-8 in PyTorch; its Stirling term
    # is masked where target <= 1 (the plain stirling_cutoff).
    *_pair("poisson_nll_loss", "PoissonNLLLoss", "poisson_nll",
           params={**_RED, "log_input": "log_input", "full": "full", "eps": "eps"},
           defaults={"log_input": True, "eps": 1e-8}),
    # var is a third positional argument; its clamp at eps is documented as ignored by autograd.
    Binding("torch.nn.functional.gaussian_nll_loss", "gaussian_nll", "torch",
            "F.gaussian_nll_loss(input, target, var{kw})",
            params={**_RED, "full": "full", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions={"var_clamp_grad": "ignore"}),
    Binding("torch.nn.GaussianNLLLoss", "gaussian_nll", "torch",
            "torch.nn.GaussianNLLLoss({kw})(input, target, var)",
            params={**_RED, "full": "full", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions={"var_clamp_grad": "ignore"}),
    # -- ctc (reference/ctc.py) --
    Binding("torch.nn.functional.ctc_loss", "ctc", "torch",
            "F.ctc_loss(input, target, input_lengths, target_lengths{kw})", **_CTC),
    Binding("torch.nn.CTCLoss", "ctc", "torch",
            "torch.nn.CTCLoss({kw})(input, target, input_lengths, target_lengths)", **_CTC),
    # -- margin (reference/margin.py) --
    # PyTorch's margin kernels: hinge_embedding_loss and margin_ranking_loss clamp with clamp_min,
    # whose slope passes at equality (hinge_kink=1); multi_margin_loss and multilabel_margin_loss
    # have hand-written backward kernels that count a term only where z > 0 (hinge_kink=0).
*_pair("hinge_embedding_loss", "HingeEmbeddingLoss", "hinge_embedding",
       params={**_RED, "margin": "margin"}, conventions={"invalid_sign": "both", "hinge_kink": 1.0}),
*_pair("soft_margin_loss", "SoftMarginLoss", "soft_margin", params=_RED),
*_pair("multilabel_soft_margin_loss", "MultiLabelSoftMarginLoss", "binary_cross_entropy_with_logits",
       params={**_RED, "weight": "weight"}, conventions={"sample_axis": "mean"}),
*_pair("multi_margin_loss", "MultiMarginLoss", "multi_margin",
       params={**_RED, "p": "p", "margin": "margin", "weight": "weight"},
       conventions={"invalid_label": "RuntimeError", "p_values": "ValueError", "hinge_kink": 0.0}),
*_pair("multilabel_margin_loss", "MultiLabelMarginLoss", "multilabel_margin",
       params=_RED, conventions={"invalid_label": "RuntimeError", "hinge_kink": 0.0}),
Binding("torch.nn.functional.margin_ranking_loss", "margin_ranking", "torch",
        "F.margin_ranking_loss(input, input2, target{kw})",
        params={**_RED, "margin": "margin"}, conventions={"hinge_kink": 1.0}),
Binding("torch.nn.MarginRankingLoss", "margin_ranking", "torch",
        "torch.nn.MarginRankingLoss({kw})(input, input2, target)",
        params={**_RED, "margin": "margin"}, conventions={"hinge_kink": 1.0}),
    # -- regression (reference/regression.py) --
    # l1_loss and mse_loss take an elementwise weight (functional form only) and divide a
    # weighted 'mean' by sum(weight); huber_loss's weighted 'mean' is a plain mean of the terms.
    Binding("torch.nn.functional.l1_loss", "absolute_error", "torch", "F.l1_loss(input, target{kw})",
            params={**_RED, "weight": "weight"}, conventions={"mean_by": "weights"}),
    Binding("torch.nn.L1Loss", "absolute_error", "torch", "torch.nn.L1Loss({kw})(input, target)", params=_RED),
    Binding("torch.nn.functional.mse_loss", "squared_error", "torch", "F.mse_loss(input, target{kw})",
            params={**_RED, "weight": "weight"}, conventions={"mean_by": "weights"}),
    Binding("torch.nn.MSELoss", "squared_error", "torch", "torch.nn.MSELoss({kw})(input, target)", params=_RED),
    Binding("torch.nn.functional.huber_loss", "huber", "torch", "F.huber_loss(input, target{kw})",
            params={**_RED, "delta": "delta", "weight": "weight"}, conventions=_NONPOS),
    Binding("torch.nn.HuberLoss", "huber", "torch", "torch.nn.HuberLoss({kw})(input, target)",
            params={**_RED, "delta": "delta"}, conventions=_NONPOS),
    *_pair("smooth_l1_loss", "SmoothL1Loss", "huber", params={**_RED, "delta": "beta"},
           conventions={"huber_form": "smooth_l1", **_NONPOS}),
    # -- embedding (reference/embedding.py) --
    Binding("torch.nn.functional.cosine_embedding_loss", "cosine_embedding", "torch",
            "F.cosine_embedding_loss(input, input2, target{kw})",
            params={"margin": "margin", "reduction": "reduction"}, conventions={"sq_norm_add": 1e-12}),
    Binding("torch.nn.CosineEmbeddingLoss", "cosine_embedding", "torch",
            "torch.nn.CosineEmbeddingLoss({kw})(input, input2, target)",
            params={"margin": "margin", "reduction": "reduction"}, conventions={"sq_norm_add": 1e-12}),
    Binding("torch.nn.functional.triplet_margin_loss", "triplet_margin", "torch",
            "F.triplet_margin_loss(input, positive, negative{kw})",
            params={**_TRIPLET, "p": "p", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions=_POSITIVE_MARGIN),
    Binding("torch.nn.TripletMarginLoss", "triplet_margin", "torch",
            "torch.nn.TripletMarginLoss({kw})(input, positive, negative)",
            params={**_TRIPLET, "p": "p", "eps": "eps"}, defaults={"eps": 1e-6},
            conventions=_POSITIVE_MARGIN),
    # The default distance is torch.pairwise_distance(x1, x2): p = 2, eps = 1e-6.
    Binding("torch.nn.functional.triplet_margin_with_distance_loss", "triplet_margin", "torch",
            "F.triplet_margin_with_distance_loss(input, positive, negative{kw})",
            params=_TRIPLET, defaults={"eps": 1e-6}, conventions=_POSITIVE_MARGIN),
    Binding("torch.nn.TripletMarginWithDistanceLoss", "triplet_margin", "torch",
            "torch.nn.TripletMarginWithDistanceLoss({kw})(input, positive, negative)",
            params=_TRIPLET, defaults={"eps": 1e-6}, conventions=_POSITIVE_MARGIN),
    # An explicit distance_function in the call: 1 - cosine_similarity (its eps 1e-8 floors each norm).
    Binding("torch.nn.functional.triplet_margin_with_distance_loss(cosine)", "triplet_margin", "torch",
            "F.triplet_margin_with_distance_loss(input, positive, negative, "
            "distance_function=lambda a, b: 1.0 - F.cosine_similarity(a, b, dim=-1){kw})",
            params=_TRIPLET, requires={"distance": "cosine"}, defaults={"eps": 1e-8},
            conventions=_POSITIVE_MARGIN),
]

#: Public loss APIs deliberately left unbound, and why.
EXCLUDED = {
    "torch.nn.NLLLoss2d": "a deprecated alias of torch.nn.NLLLoss (same class body), which is bound",
    "torch.nn.AdaptiveLogSoftmaxWithLoss": "a layer with trainable, randomly initialised cluster weights "
                                           "that returns (output, loss); no loss function of given inputs",
    "torch.nn.LinearCrossEntropyLoss": "a torch.nn.Linear layer (randomly initialised weight) fused with "
                                       "cross_entropy; its loss of given logits is torch.nn.CrossEntropyLoss",
    "torch.nn.functional.linear_cross_entropy": "documented as cross_entropy(linear(input, linear_weight), "
                                                "target): it takes features and a weight matrix, not logits, "
                                                "and reads the projection's last axis as classes only for 2-D "
                                                "input; its loss of logits is torch.nn.functional.cross_entropy",
}
