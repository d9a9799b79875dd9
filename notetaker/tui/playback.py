"""Playing a transcript line's audio from a screen. The segment's span is read on the UI thread
(a few seconds of one file) so a missing or damaged file is a toast at once; the sound is
written by the player's own thread, which posts PlaybackEnded to the screen when it is over."""

from __future__ import annotations

from textual.screen import Screen

from notetaker.audio import AudioError
from notetaker.audio.playback import Player, meeting_audio, read_span, segment_span
from notetaker.tui.deps import AppDeps
from notetaker.tui.messages import PlaybackEnded
from storage import SegmentRecord


class LinePlayer:
    """At most one line playing for one screen; problems are toasts on that screen."""

    def __init__(self, screen: Screen, deps: AppDeps) -> None:
        self.screen = screen
        self.deps = deps
        self.player: Player | None = None
        self.segment_id: int | None = None  # the line playing, None when quiet

    def play(self, seg: SegmentRecord) -> bool:
        """Stop what plays and play `seg` (padded, its own channel); False, with a toast, when
        it cannot be played."""
        self.stop()
        try:
            reader = meeting_audio(self.deps.spool_dir, seg.session_id)
            span = segment_span(reader, seg)
            audio = read_span(reader, span)
            player = Player(self.deps.output_device)
            player.start(audio, span.start_s,
                         on_end=lambda error: self.screen.post_message(PlaybackEnded(seg.id, player, error)))
        except AudioError as e:
            self.screen.notify(str(e), severity="error")
            return False
        self.player, self.segment_id = player, seg.id
        return True

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()

    def ended(self, message: PlaybackEnded) -> bool:
        """Take note that a playback ended; True when it was the one playing now (then its
        line is quiet again). Its error, if any, becomes a toast."""
        if message.error:
            self.screen.notify(message.error, severity="error")
        if message.player is not self.player:
            return False
        self.player, self.segment_id = None, None
        return True
