"""PyTorch: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

Conventions are taken from the PyTorch documentation of each loss (2.x):
BCELoss clamps each log at -100; ``cross_entropy``/``nll_loss`` put classes on dim 1,
ignore ``-100`` by default, divide a weighted ``mean`` by the sum of the targets' weights,
and raise ``IndexError`` ("Target N is out of bounds") for an invalid class index.
"""

from __future__ import annotations

import numpy as np

from lossparity.adapters._base import FrameworkAdapter, py_literal
from lossparity.conformance.model import Binding

_DTYPES = {"float32": "float32", "float64": "float64"}


class TorchAdapter(FrameworkAdapter):
    framework = "torch"
    module = "torch"
    imports = "import numpy as np\nimport torch\nimport torch.nn.functional as F\n"

    def to_framework(self, array, dtype):
        torch = self.namespace()["torch"]
        if array.dtype.kind == "f":
            return torch.tensor(array, dtype=getattr(torch, _DTYPES[dtype]))
        return torch.tensor(array, dtype=torch.int64)

    def literal(self, name, array, dtype):
        kind = f"torch.{_DTYPES[dtype]}" if array.dtype.kind == "f" else "torch.int64"
        text = f"torch.tensor({py_literal(array)}, dtype={kind})"
        if array.size == 0 and array.ndim != 1:
            text += f".reshape{tuple(array.shape)}"
        return f"{name} = {text}"

    def to_numpy(self, result):
        return result.detach().to("cpu").double().numpy(), str(result.dtype).removeprefix("torch.")

    def value_and_grad(self, fn, x):
        torch = self.namespace()["torch"]
        x = x.detach().clone().requires_grad_(True)
        value = fn(x)
        if not value.requires_grad:  # the loss does not depend on the input at all
            return value, torch.zeros_like(x)
        (grad,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
        return value, torch.zeros_like(x) if grad is None else grad

    def grad_lines(self, source):
        return ["input.requires_grad_(True)", f"loss = {source}", self.print_statement("loss.detach()"),
                "loss.sum().backward()", self.print_statement("input.grad")]


ADAPTER = TorchAdapter()

_CE = dict(class_axis=1, mean_by="weights", invalid_label="IndexError")


def _pair(fn: str, module: str, spec: str, **kw) -> list[Binding]:
    """The functional form and the module form of one loss share everything but the call."""
    return [
        Binding(f"torch.nn.functional.{fn}", spec, "torch", f"F.{fn}(input, target{{kw}})", **kw),
        Binding(f"torch.nn.{module}", spec, "torch", f"torch.nn.{module}({{kw}})(input, target)", **kw),
    ]


_RED = {"reduction": "reduction"}
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
]
