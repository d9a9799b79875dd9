"""`notetaker vocabulary list|add|rm`: the names and terms every engine is told about
(notetaker.vocabulary keeps them in config.toml)."""

from __future__ import annotations

import argparse

from notetaker.cli.output import EXIT_OK, write_json
from notetaker.config import Settings
from notetaker.vocabulary import add_term, configured_terms, remove_term


def cmd_vocabulary(args: argparse.Namespace, settings: Settings) -> int:
    action = getattr(args, "vocabulary_command", None) or "list"
    if action == "add":
        for term in args.terms:
            before = configured_terms(settings)
            after = add_term(settings, term)
            print(f"added {after[-1]!r}" if after != before else f"{term.strip()!r} is already in the vocabulary")
    elif action == "rm":
        for term in args.terms:
            remove_term(settings, term)
            print(f"removed {term.strip()!r}")
    terms = configured_terms(settings)
    if action == "list" and getattr(args, "json", False):
        write_json({"vocabulary": list(terms), "config": str(settings.config_path)})
    elif action == "list":
        for term in terms:
            print(term)
        if not terms:
            print(f"no vocabulary yet: `notetaker vocabulary add NAME` writes it to {settings.config_path}")
    else:
        print(f"{len(terms)} term{'s' if len(terms) != 1 else ''} in {settings.config_path}")
    return EXIT_OK
