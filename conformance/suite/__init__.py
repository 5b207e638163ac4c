"""The conformance suite's test module; ``lossparity run`` runs it through pytest."""
