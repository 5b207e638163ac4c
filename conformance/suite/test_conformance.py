"""One test per (binding, case, dtype); parametrized by the lossparity plugin.

The test runs the real framework call against the oracle; the plugin records the verdict
(``conformance/plugin.py``). A deviation fails, a registered known deviation xfails, a
missing framework skips.
"""

import pytest


def test_loss(lp_item, record_property):
    record = lp_item.run()
    if record is None:
        pytest.skip("the binding cannot take this case")
    record_property("lossparity", record)
    verdict = record["verdict"]
    if verdict == "unsupported":
        pytest.skip(record["actual"]["message"])
    if verdict == "known":
        pytest.xfail(f"known deviation {record['known']['id']}")
    if verdict != "conform":
        pytest.fail(f"{verdict}: {(record['errors'] or {}).get('summary', '')}", pytrace=False)
