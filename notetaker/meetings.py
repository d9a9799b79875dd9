"""Deleting a meeting: its rows (segments, marks, summaries, search index) and every file
of it in the data home (the spool folder with its audio). A file the user transcribed
from (`transcribe FILE`) is theirs and never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

from storage import SessionStore

from notetaker.spool import spool_folder


class DeleteError(Exception):
    """One line: why a meeting could not be deleted (or its files not all removed)."""


def delete_meeting(store: SessionStore, sessions_dir: Path | None, session_id: int) -> None:
    """The rows first (the meeting is gone from every view at once), then its files
    (`sessions_dir`: where spools live; None: no files to remove)."""
    session = store.get_session(session_id)  # SessionNotFound for an unknown id
    if session.status == "recording":
        raise DeleteError(f"meeting {session_id} is still recording; finish it first")
    store.delete_session(session_id)
    if sessions_dir is None:
        return
    folder = spool_folder(sessions_dir, session_id)
    leftovers = [folder] + sorted(Path(sessions_dir).glob(f"{session_id}.old-*"))
    for path in leftovers:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except OSError as e:
            raise DeleteError(f"meeting {session_id} is deleted but {path} could not be removed: "
                              f"{e.strerror or e}") from None

