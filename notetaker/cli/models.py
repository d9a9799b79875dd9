"""`notetaker models list|pull|rm|add`: print what notetaker.models finds and does."""

from __future__ import annotations

import argparse
import sys

from notetaker.cli.output import EXIT_INTERRUPTED, EXIT_OK, UsageError, write_json
from notetaker.config import Settings

GiB, MiB, KiB = 2**30, 2**20, 2**10
COLUMNS = ("NAME", "KIND", "SOURCE", "ON DISK", "MEMORY", "LANGUAGES", "STATUS")


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    action = getattr(args, "models_command", None) or "list"
    if action == "list":
        return _list(settings, getattr(args, "json", False))
    if action == "pull":
        return _pull(args.name, settings, args.quiet)
    if action == "rm":
        return _remove(args.name, settings, args.yes)
    if action == "add":
        return _add(args.path, args.name, settings)
    raise UsageError(f"unknown models command {action!r}")


def size(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GB"
    if n >= MiB:
        return f"{n / MiB:.0f} MB"
    return f"{n / KiB:.0f} KB" if n >= KiB else f"{n} B"


def rows(settings: Settings) -> tuple[list[dict], str]:
    """One dict per model, and the machine the memory column is for."""
    from notetaker.budget import detect_machine
    from notetaker.budget import loaded_bytes
    from notetaker.models import BUNDLED, scan

    machine = detect_machine()
    out = []
    for m in scan(settings):
        memory, memory_problem = loaded_bytes(m, machine)
        e = m.entry
        languages = e.languages if e is not None else "en" if m.name == BUNDLED and not m.local else None
        out.append({
            "name": m.name, "kind": m.kind, "family": m.family, "engine": m.engine, "repo": m.repo,
            "source": m.source, "folder": str(m.folder) if m.folder else None, "state": m.state,
            "status": _status(m.name, m.state, m.problem), "problem": m.problem, "disk_bytes": m.disk_bytes,
            "download_bytes": e.download_bytes if e is not None else None, "memory_bytes": memory,
            "memory_problem": memory_problem, "languages": languages,
        })
    return out, machine.label


def _status(name: str, state: str, problem: str | None) -> str:
    if state == "complete":
        return "downloaded"
    if state == "partial":
        return f"partial: run `notetaker models pull {name}` to resume"
    if state == "corrupt":
        return f"corrupt: {problem}"
    return f"not downloaded{f' ({problem})' if problem else ''}"


def _list(settings: Settings, as_json: bool) -> int:
    found, machine = rows(settings)
    if as_json:
        write_json(found)
        return EXIT_OK
    table = []
    for r in found:
        if r["state"] == "missing" and r["download_bytes"] is not None:
            disk = "~" + size(r["download_bytes"])
        else:
            disk = size(r["disk_bytes"]) if r["disk_bytes"] or r["state"] != "missing" else "-"
        memory = size(r["memory_bytes"]) if r["memory_bytes"] is not None else "?" if r["memory_problem"] else "-"
        status = r["status"]
        if r["memory_problem"]:
            status += f"; memory unknown: {r['memory_problem']}"
        kind = f"{r['kind']}/{r['engine']}" if r["kind"] != "unknown" else "?"
        table.append((r["name"], kind, r["source"], disk, memory, r["languages"] or "-", status))
    widths = [max(len(str(row[i])) for row in [COLUMNS, *table]) for i in range(len(COLUMNS) - 1)]
    for row in [COLUMNS, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    from notetaker.budget import LIST_CONTEXT

    print(f"\nmemory: once loaded on this machine ({machine}), weights + KV caches + activations; "
          f"rewrite models with {LIST_CONTEXT} tokens of context")
    return EXIT_OK


def _pull(name: str, settings: Settings, quiet: bool) -> int:
    from notetaker.models import find, pull

    try:
        folder = pull(name, settings, progress=not quiet)
    except KeyboardInterrupt:
        print(f"notetaker: download interrupted; run `notetaker models pull {name}` to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    found = find(name, settings)
    disk = f", {size(found.disk_bytes)}" if found is not None and found.disk_bytes else ""
    print(f"{name}: downloaded{disk} in {folder}")
    return EXIT_OK


def _remove(name: str, settings: Settings, yes: bool) -> int:
    from notetaker.models import BUNDLED, Refused, find, remove

    found = find(name, settings)
    if found is not None and found.repo is None and not found.local and found.origin is None:
        raise Refused(f"{BUNDLED} is bundled with notetaker and cannot be removed")
    if found is None or (found.state == "missing" and not found.local):
        raise UsageError(f"no model named {name!r} is downloaded or registered (see `notetaker models list`)")
    what = (f"the registration of {name} (the folder {found.folder} stays)" if found.local
            else f"{name} ({size(found.disk_bytes)} in {found.repo or found.folder})")
    if not yes:
        if not (sys.stdin and sys.stdin.isatty()):
            raise UsageError(f"pass --yes to remove {name} without being asked")
        answer = input(f"Remove {what}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing removed")
            return EXIT_OK
    freed = remove(name, settings)
    if found.local:
        print(f"{name}: registration removed; {found.folder} is untouched")
    else:
        print(f"{name}: removed, {size(freed)} freed")
    return EXIT_OK


def _add(path: str, name: str | None, settings: Settings) -> int:
    from notetaker.models import add_local

    m = add_local(path, name, settings)
    print(f"{m.name}: {m.kind}/{m.engine} model at {m.folder}, registered; use it with --model {m.folder}")
    return EXIT_OK
