"""A fourth, test-only model family: the whole of what a new family adds (this folder) and
the one line that registers it (`registry.register(SPEC)` in test_toy_family.py)."""
