"""The core every layer imports and that imports none of them.

- ``model``: the vocabulary as data (Spec, Binding, Case, layouts);
- ``dtypes``: dtype names, the per-dtype tolerance table, ULPs;
- ``verdicts``: the verdict vocabulary;
- ``records``: the results file's codec, schema and version.

``tests/test_architecture.py`` (import-linter contracts in ``pyproject.toml``) keeps it so.
"""
