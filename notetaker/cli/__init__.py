"""`notetaker …` subcommands: parse, call, print. Exit 0 on success, 2 for a usage or
input error (one clear line), 1 for an internal error.

This module only parses and turns errors into one line; what each subcommand does lives in
`commands`, `transcribe`, `tui` and `models` beside it, imported only once a command runs so
that `--help` loads no model or UI code.
"""

from __future__ import annotations

import argparse
import os
import sys

from notetaker import __version__
from notetaker.cli.output import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, in_terminal
from notetaker.config import ConfigError, Settings, load_settings
from notetaker.errors import one_line

SQLITE_MAX_INT = 2**63 - 1
MIN_SPEED, MAX_SPEED = 0.1, 1000.0  # --realtime --speed: slower than a tenth never ends, faster is batch


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="notetaker", description="A local, private meeting note-taker for the terminal.")
    p.add_argument("--home", help="data folder (default: $NOTETAKER_HOME or the platform's user-data folder)")
    p.add_argument("--version", action="version", version=f"notetaker {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    t = sub.add_parser("transcribe", help="transcribe an audio file into a new session")
    t.add_argument("file", nargs="?", help="WAV, FLAC, OGG or MP3 at any sample rate")
    t.add_argument("--sample", action="store_true", help="transcribe the bundled sample recording")
    _engine_args(t)
    t.add_argument("--realtime", action="store_true", help="play the file at wall-clock speed, like a live meeting")
    t.add_argument("--speed", type=_speed, default=None,
                   help=f"with --realtime: clock speed-up (2 = twice as fast; {MIN_SPEED:g} to {MAX_SPEED:g})")
    t.add_argument("--windowing", choices=["vad", "seek"], default=None,
                   help="whisper: 'seek' (the default for a file) runs faster-whisper's loop over the whole file, the "
                        "most accurate, with the finals at the end; 'vad' packs the speech the VAD finds into 30 s "
                        "windows and saves finals as it goes (the default with --realtime and other engines)")
    t.add_argument("--beam-size", type=_positive_int, default=1, metavar="N",
                   help="whisper: beam search width (faster-whisper's default is 5; 1 = greedy, fastest)")
    t.add_argument("--title", type=_text, help="session title (default: the file name)")
    t.add_argument("--json", action="store_true", help="print JSON Lines: session, partial, final and progress events")
    t.add_argument("--rewrite", dest="rewrite_backend", choices=["none", "mlx", "voxtral", "openai"],
                   help="clean up finals with a local LLM as they come (default: the config's, else none)")
    _speaker_args(t)
    t.set_defaults(func="transcribe")

    r = sub.add_parser("record", help="open the terminal UI straight into a live meeting")
    r.add_argument("--input", metavar="DEVICE_OR_FILE",
                   help="microphone (name, part of a name or index; default: the system's) or an audio file "
                        "played as if live")
    r.add_argument("--system", nargs="?", const="auto", metavar="DEVICE",
                   help="also record the other side of the call from a loopback/monitor device "
                        "(default: the output's monitor); stored as channel 'system'")
    r.add_argument("--mix", action="store_true", help="mix microphone and system audio into one channel")
    _engine_args(r)
    r.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                   help="play a file at wall-clock speed, like a live meeting (default: on)")
    r.add_argument("--speed", type=_speed, default=None,
                   help=f"with --realtime: clock speed-up (2 = twice as fast; {MIN_SPEED:g} to {MAX_SPEED:g})")
    r.add_argument("--title", type=_text, help="meeting title (default: the file name)")
    r.add_argument("--rewrite", dest="rewrite_backend", choices=["none", "mlx", "voxtral", "openai"],
                   help="clean up finals with a local LLM as they come (default: the config's, else none)")
    _speaker_args(r)
    r.set_defaults(func="record")

    s = sub.add_parser("sessions", help="list meetings")
    s.add_argument("--limit", type=_positive_int, default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func="sessions")

    sh = sub.add_parser("show", help="print one meeting's transcript")
    sh.add_argument("id", type=_session_id)
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func="show")

    pl = sub.add_parser("play", help="hear a meeting's kept audio: one segment, or all of it (Ctrl-C stops)")
    pl.add_argument("id", type=_session_id)
    pl.add_argument("--segment", type=_positive_int, metavar="N",
                    help="the segment numbered #N in `notetaker show` (default: the whole meeting)")
    pl.add_argument("--device", metavar="DEVICE",
                    help="output device: a name, part of a name or index (default: the config's output_device, "
                         "else the system's)")
    pl.set_defaults(func="play")

    q = sub.add_parser("search", help="full-text search across all meetings",
                       description="Meetings that contain every word (in the transcript, your notes or the title), "
                                   "each with its best hits. \"a phrase\", -word or NOT word (leave out meetings "
                                   "with it), a OR b, speaker:NAME or speaker:S2, channel:mic or channel:system; "
                                   "the last word (2+ letters) also matches longer words (laun finds launch).")
    q.add_argument("query", nargs="*", type=_text, help="words to search for; -word works without quotes or --")
    q.add_argument("--limit", type=_positive_int, default=20, help="most meetings to show (default: 20)")
    q.add_argument("--session", type=_session_id, default=None, help="search one meeting only")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func="search")

    e = sub.add_parser("export", help="export a meeting as Markdown, JSON, SRT, VTT or text")
    e.add_argument("id", type=_session_id)
    e.add_argument("--format", "-f", required=True, choices=["md", "json", "srt", "vtt", "txt"])
    e.add_argument("-o", "--output", help="file or folder to write (default: standard output)")
    e.add_argument("--force", action="store_true", help="overwrite a file that is already there")
    e.set_defaults(func="export")

    sp = sub.add_parser("speakers", help="list a meeting's speakers; name them or merge two that are one person")
    sp.add_argument("id", type=_session_id)
    sp.add_argument("--rename", dest="edits", action="append", type=_speaker_edit("rename"), default=[],
                    metavar="LABEL=NAME", help="name a speaker, e.g. S2=Anya (S2= clears the name); repeatable")
    sp.add_argument("--merge", dest="edits", action="append", type=_speaker_edit("merge"), default=[],
                    metavar="FROM=INTO", help="one person heard as two labels: S3=S1 moves S3's segments to S1; "
                                             "repeatable; applied in the order given, all or none")
    sp.add_argument("--find", action="store_true",
                    help="find who speaks from the meeting's kept audio and label its segments (for a meeting "
                         "recorded with labels off, or recovered); needs `notetaker models pull diarization`")
    sp.add_argument("--count", type=_positive_int, metavar="N", help="with --find: how many people speak, when you know")
    sp.add_argument("--json", action="store_true", help="one JSON line per speaker")
    sp.set_defaults(func="speakers")

    ed = sub.add_parser("edit", help="correct one segment's text (what was heard is kept), or undo a correction")
    ed.add_argument("id", type=_session_id)
    ed.add_argument("seq", nargs="?", type=_positive_int, help="the segment's number (#3 in `notetaker show`)")
    ed.add_argument("text", nargs="?", type=_text, help="its corrected text")
    ed.add_argument("--undo", action="store_true", help="undo the meeting's last edit, or all of its last replace")
    ed.set_defaults(func="edit")

    rp = sub.add_parser("replace", help="find and replace words in a meeting's transcript, with a preview",
                        usage="notetaker replace ID OLD NEW [--case-sensitive] [--add-to-vocabulary] [--yes]\n"
                              "       notetaker replace --all-meetings OLD NEW [--case-sensitive] [--yes]")
    rp.add_argument("id", nargs="?", type=_session_id, help="the meeting (none with --all-meetings)")
    rp.add_argument("old", type=_text, help="the words to find: whole words, any case")
    rp.add_argument("new", type=_text, help="what to put in their place")
    rp.add_argument("--all-meetings", action="store_true", help="replace in every meeting")
    rp.add_argument("--add-to-vocabulary", action="store_true",
                    help="also add NEW to the custom vocabulary, so the engines spell it right next time")
    rp.add_argument("--case-sensitive", action="store_true", help="match the case of OLD exactly")
    rp.add_argument("--yes", action="store_true", help="apply without asking (needed when not in a terminal)")
    rp.set_defaults(func="replace")

    i = sub.add_parser("import", help="import a meeting exported as JSON")
    i.add_argument("file")
    i.set_defaults(func="import")

    sm = sub.add_parser("summarize", help="write (and store) a summary of a meeting with a local LLM")
    sm.add_argument("id", type=_session_id)
    sm.add_argument("--backend", dest="rewrite_backend", choices=["none", "mlx", "voxtral", "openai"],
                    help="rewrite backend (default: the config's rewrite_backend, else the plan's: a "
                         "downloaded model that fits, a server running here, or none)")
    sm.add_argument("--model", dest="rewrite_model",
                    help="LLM name, local folder, .gguf file or hub repo id (or server model)")
    sm.add_argument("--template", help="a template name in the data home's templates/ or a file path")
    sm.add_argument("--clean", action="store_true", help="first clean up segments that have no cleaned text")
    sm.add_argument("--json", action="store_true", help="print the stored summary and its citations as JSON")
    sm.set_defaults(func="summarize")

    rc = sub.add_parser("recover", help="list interrupted meetings, or transcribe the audio a crash left unheard")
    rc.add_argument("id", nargs="?", type=_session_id, help="the meeting to recover (default: list them)")
    rc.add_argument("--all", action="store_true", help="recover every interrupted meeting that has audio")
    rc.add_argument("--engine", help="speech engine (default: the one the meeting was recorded with)")
    rc.add_argument("--model", help="model name, local folder or hub repo id (default: the meeting's)")
    rc.add_argument("--no-diarize", action="store_true",
                    help="leave speaker labels as they are (by default a recovered meeting's speakers are found "
                         "again from its whole audio, where the diarization models are pulled)")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func="recover")

    m = sub.add_parser("models", help="list, download, remove or add speech and rewrite models")
    m.set_defaults(func="models", models_command="list", json=False)
    ms = m.add_subparsers(dest="models_command", parser_class=_Parser, metavar="ACTION")
    ml = ms.add_parser("list", help="every model: downloaded or not, size, memory once loaded (the default)")
    ml.add_argument("--json", action="store_true")
    mp = ms.add_parser("pull", help="download a model, or finish a download that stopped")
    mp.add_argument("name", help="a name from `notetaker models list` or a hub repo id (org/name)")
    mp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    mr = ms.add_parser("rm", help="delete a downloaded model, or forget a local folder added with `models add`")
    mr.add_argument("name")
    mr.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    ma = ms.add_parser("add", help="register a local model folder (or a GGUF file for rewrite) under a name")
    ma.add_argument("path", help="a folder in a layout an engine loads, or a chat LLM for rewrite (a folder, a .gguf file or an Ollama manifest)")
    ma.add_argument("--name", type=_text, help="the name to list it under (default: the folder's name)")

    v = sub.add_parser("vocabulary", help="list, add or remove the names and terms recognition should get right")
    v.set_defaults(func="vocabulary", vocabulary_command="list", json=False)
    vs = v.add_subparsers(dest="vocabulary_command", parser_class=_Parser, metavar="ACTION")
    vl = vs.add_parser("list", help="the terms in config.toml (the default)")
    vl.add_argument("--json", action="store_true")
    va = vs.add_parser("add", help="add terms: people, products, jargon, e.g. Anya \"Q3 OKRs\" Kubernetes")
    va.add_argument("terms", nargs="+", type=_text, metavar="TERM")
    vr = vs.add_parser("rm", help="remove terms (any case)")
    vr.add_argument("terms", nargs="+", type=_text, metavar="TERM")

    dl = sub.add_parser("delete", help="delete meetings: transcript, marks, summaries, search index and audio")
    dl.add_argument("ids", nargs="+", type=_session_id, metavar="ID")
    dl.add_argument("--yes", action="store_true", help="do not ask (needed when not in a terminal)")
    dl.set_defaults(func="delete")

    d = sub.add_parser("doctor", help="check the platform, BLAS, models, audio and data home")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func="doctor")
    return p


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", help="speech engine (default: whisper)")
    p.add_argument("--model", help="model name, local folder or hub repo id (default: bundled Whisper tiny.en)")
    p.add_argument("--language", help="language code, e.g. en (default: the model's or detected)")
    p.add_argument("--delay", type=int, dest="delay_ms", metavar="MS",
                   help="streaming engines: how far the text may trail the speech, 80-2400 ms in 80 ms steps")
    p.add_argument("--context", type=_text, metavar="TEXT",
                   help='names, jargon or agenda that bias recognition (qwen3), e.g. "Anya, Kubernetes, Q3 OKRs"')
    p.add_argument("--vocabulary", type=_text, metavar="TERMS",
                   help='names and terms to get right, added to the configured ones for this run (every engine), '
                        'e.g. "Anya, Kubernetes"')


def _speaker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speakers", type=_positive_int, metavar="N",
                   help="how many people speak, when you know (speaker labels find them otherwise)")
    p.add_argument("--no-diarize", action="store_true", help="no speaker labels for this meeting")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    if value > SQLITE_MAX_INT:  # ids and limits go to SQLite, whose integers are 64-bit
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {SQLITE_MAX_INT})")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _speed(text: str) -> float:
    value = _positive_float(text)
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{text!r} must be between {MIN_SPEED:g} and {MAX_SPEED:g}")
    return value


def _session_id(text: str) -> int:
    try:
        positive = int(text) > 0
    except ValueError:
        positive = False
    if not positive:
        raise argparse.ArgumentTypeError(f"{text!r} is not a session id (a positive number)")
    return _positive_int(text)  # and not past SQLite's integers


def _text(text: str) -> str:
    """Text that is stored or searched: the shell hands undecodable bytes over as
    surrogates, which SQLite cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{ascii(text)} is not valid UTF-8 text") from None
    return text


def _speaker_edit(kind: str):
    """`LABEL=NAME` (rename; the name may be empty) or `FROM=INTO` (merge) → (kind, left, right)."""

    def parse(text: str) -> tuple[str, str, str]:
        left, sep, right = _text(text).partition("=")
        left, right = left.strip(), right.strip()
        if not sep or not left or (kind == "merge" and not right):
            example = "S2=Anya" if kind == "rename" else "S3=S1"
            raise argparse.ArgumentTypeError(f"{text!r} is not {'LABEL=NAME' if kind == 'rename' else 'FROM=INTO'}"
                                             f" (e.g. {example})")
        return kind, left, right

    return parse


def settings_from(args: argparse.Namespace) -> Settings:
    flags = {"home": args.home}
    for name in ("engine", "model", "language", "delay_ms", "context", "vocabulary", "rewrite_backend",
                 "rewrite_model"):
        flags[name] = getattr(args, name, None)
    flags["diarize"] = "off" if getattr(args, "no_diarize", False) else None
    return load_settings(flags)


def _user_errors() -> tuple[type[BaseException], ...]:
    from asr.base import ASRError
    from storage import StoreError

    from rewrite.base import RewriteError

    from notetaker.audio import AudioError
    from notetaker.diarization import FindError
    from notetaker.meetings import DeleteError
    from notetaker.recovery import RecoveryError
    from notetaker.spool import SpoolError

    return (UsageError, ConfigError, AudioError, ASRError, StoreError, RewriteError, SpoolError, RecoveryError,
            DeleteError, FindError)


def _search_words(parser: argparse.ArgumentParser, args: argparse.Namespace, extras: list[str],
                  argv: list[str]) -> str:
    """The search query as typed: argparse takes `-budget` for an option it does not know, so
    such words come back as extras; put them back where they were typed."""
    if getattr(args, "func", None) != "search" and extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    for word in extras:
        if word.startswith("--"):
            parser.error(f"search has no option {word} (a word to leave out is written -word)")
        try:
            _text(word)
        except argparse.ArgumentTypeError as e:
            parser.error(f"argument query: {e}")
    taken: set[int] = set()

    def typed_at(word: str) -> int:
        at = next((i for i, a in enumerate(argv) if a == word and i not in taken), len(argv))
        taken.add(at)
        return at

    return " ".join(sorted(args.query + extras, key=typed_at))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if getattr(args, "func", None) == "search" or extras:
        args.query = _search_words(parser, args, extras, sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        if not in_terminal():  # piped: help, as before
            parser.print_help()
            return EXIT_OK
        args.func = "tui"
    try:
        return _command(args.func)(args, settings_from(args))
    except KeyboardInterrupt:
        print("notetaker: interrupted; everything transcribed so far is saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `notetaker show 3 | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:
        if isinstance(e, _user_errors()):
            from notetaker.models import download_advice

            print(f"notetaker: {one_line(e)}{download_advice(e)}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("NOTETAKER_DEBUG"):
            raise
        print(f"notetaker: internal error: {type(e).__name__}: {one_line(e)} "
              "(run again with NOTETAKER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL


def _command(name: str):
    """The function that runs subcommand `name`, imported only now."""
    if name in ("transcribe", "recover"):
        from notetaker.cli import transcribe as module
    elif name in ("record", "tui"):
        from notetaker.cli import tui as module
    elif name == "models":
        from notetaker.cli import models as module
    elif name == "play":
        from notetaker.cli import play as module
    elif name == "speakers":
        from notetaker.cli import speakers as module
    elif name == "vocabulary":
        from notetaker.cli import vocabulary as module
    else:
        from notetaker.cli import commands as module
    return getattr(module, f"cmd_{name.replace('-', '_')}")



