"""The hostile-input corpus of issue 14 (``corpus.py`` builds it; ``tests/test_hostile_inputs.py`` runs it)."""
