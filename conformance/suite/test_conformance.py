"""One test per (binding, dtype): every case of the binding's spec, in each of the run's modes;
parametrized by the lossparity plugin.

The test runs the real framework calls against the oracle; the plugin records each verdict
as a line of the results file (``conformance/plugin.py``). A finding fails the test, findings
that are all registered known deviations xfail it, a missing framework skips it.
"""

from collections import Counter

import pytest

from lossparity.core.verdicts import CONFORMING


def test_loss(lp_item, record_property):
    lines = lp_item.run()
    if not lines:
        pytest.skip("the binding can take none of these cases")
    record_property("lossparity", "\n".join(line for line, _ in lines))
    results = [(line, verdict) for line, verdict in lines if verdict != "shrunk"]  # shrunk: a group's smallest case
    verdicts = Counter(verdict for _, verdict in results)
    if verdicts["unsupported"]:
        pytest.skip("unsupported: the framework cannot run this binding (see the results file)")
    findings = {v: n for v, n in verdicts.items() if v not in CONFORMING}
    if findings:
        pytest.fail(
            ", ".join(f"{n} {v}" for v, n in sorted(findings.items())) + f" of {len(results)} results", pytrace=False
        )
    if verdicts["known"]:
        pytest.xfail(f"{verdicts['known']} known deviation(s) of {len(results)} results")
