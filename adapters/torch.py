"""PyTorch: ``torch.nn.functional`` losses and their ``torch.nn`` modules.

Their bindings, with the conventions taken from the PyTorch documentation of each loss (2.x),
are declared beside their specs (``conformance/families/<family>.py``, torch sections).
"""

from __future__ import annotations

from lossparity.adapters.base import FrameworkAdapter, py_literal


class TorchAdapter(FrameworkAdapter):
    framework = "torch"
    module = "torch"
    imports = "import numpy as np\nimport torch\nimport torch.nn.functional as F\n"
    transforms = {
        "sigmoid": "torch.sigmoid({x})",
        "softmax": "torch.softmax({x}, dim={axis})",
        "log_softmax": "torch.log_softmax({x}, dim={axis})",
        "log": "torch.log({x})",
        "exp": "torch.exp({x})",
    }
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
        return f"torch.backends.cuda.matmul.allow_tf32 = {self.tf32}\ntorch.backends.cudnn.allow_tf32 = {self.tf32}\n"

    def print_statement(self, name):
        return f"print({name}.detach().double().tolist())"  # NumPy has no bfloat16 of torch's

    def public_losses(self):
        """``torch.nn`` loss modules (``_Loss`` subclasses, and classes named ``*Loss``) and the
        ``torch.nn.functional`` losses (``*_loss``, ``*cross_entropy*``, ``kl_div``)."""
        import inspect

        torch, F = self.namespace()["torch"], self.namespace()["F"]
        base = torch.nn.modules.loss._Loss
        modules = [
            n
            for n in dir(torch.nn)
            if not n.startswith("_")
            and inspect.isclass(getattr(torch.nn, n))
            and (issubclass(getattr(torch.nn, n), base) or n.endswith("Loss"))
        ]
        functions = [
            n
            for n in dir(F)
            if not n.startswith("_")
            and callable(getattr(F, n))
            and (n.endswith("_loss") or "cross_entropy" in n or n == "kl_div")
        ]
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
        lines += [
            f"    loss = loss_fn({sig})",
            "    if not loss.requires_grad:  # the loss does not depend on them at all",
            f"        return loss, [torch.zeros_like(x) for x in ({ws},)]",
            f"    grads = torch.autograd.grad(loss.sum(), ({ws},), materialize_grads=True)",
            "    return loss.detach(), list(grads)",
        ]
        return "\n".join(lines) + "\n"


ADAPTER = TorchAdapter()

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
