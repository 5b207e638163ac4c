"""The loss specs: each canonical loss once, as data. Everything else reads this table.

Each family of losses declares its specs, their strategies and edge tables, and the
parameters they add in ``conformance/families/<family>.py`` (its oracles in
``reference/<family>.py``); this module only collects them, in the families' order.
"""

from __future__ import annotations

import dataclasses

from lossparity.conformance import edges, families
from lossparity.core.model import Spec

SPECS: dict[str, Spec] = {}

#: What each parameter accepts: a tuple of values, a type, or ``np.ndarray`` for array
#: parameters. Checked where a user types parameters (``lossparity explain --param``).
PARAMETERS: dict[str, object] = {}

for _family in families.modules():
    # a family declares its edge rows; here, where each spec is known, they become its cases
    SPECS.update({s.name: dataclasses.replace(s, edges=edges.cases(s)) for s in _family.SPECS})
    for _name, _domain in _family.PARAMETERS.items():  # one vocabulary: a name means one thing
        if PARAMETERS.setdefault(_name, _domain) != _domain:
            raise TypeError(
                f"{_family.__name__} declares parameter {_name!r} as {_domain!r}, "
                f"already declared as {PARAMETERS[_name]!r}"
            )
