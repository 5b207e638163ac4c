"""The float64 NumPy oracle.

Each loss is written once, as a sequence of named stages, and takes the binding's
documented conventions as keyword arguments, so that it predicts what that binding
should return (see :mod:`lossparity.reference.conventions`).
"""

from lossparity.reference.conventions import CONVENTIONS, Convention
from lossparity.reference.errors import OracleError
from lossparity.reference.trace import Stage, Trace

__all__ = ["CONVENTIONS", "Convention", "OracleError", "Stage", "Trace"]
