"""Widgets the screens are built from, beyond Textual's own."""
