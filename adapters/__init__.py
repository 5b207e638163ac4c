"""Framework adapters: the mechanics of running a loss in each framework (arrays, programs,
modes, introspection of its public losses). The only modules that import a framework.

Each is found through the entry-point group ``lossparity.adapters`` (``conformance/registry.py``
discovers them); the public interface is ``adapters/base.py``. Our bindings are declared beside
their specs, in ``conformance/families/<family>.py``; a third-party adapter module declares its
own ``BINDINGS`` (``docs/adapters.md``).
"""
