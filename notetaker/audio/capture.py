"""Live capture: one PortAudio input stream per device (microphone, system loopback), each at
its native rate, turned into aligned 16 kHz blocks.

Threads. PortAudio calls `_Channel.callback` on its own thread: it copies the frames into a
bounded deque and returns; it takes no lock, never waits, and counts what it cannot keep.
Everything else (downmix, resampling, alignment, noticing a device that went away and
opening it again) happens on the thread that iterates the source, which never waits for a
model: the recorder's producer thread only spools and hands blocks over.

Time. All channels share one timeline, the capture clock: the monotonic clock minus the time
spent paused, starting when iteration starts. A stream's first frame is placed on it from the
callback's own timing, so channels that start (or come back) at different moments still line
up; audio that never arrived (a device away, a full queue) becomes zeros of the same length,
counted in `dropped_frames`, so `mic` and `system` stay aligned to the wall clock and to each
other for the whole meeting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import numpy as np

from .base import SAMPLE_RATE, AudioError, AudioSource
from .devices import DeviceInfo, choose_device, close_input, list_input_devices, open_input, reason, refresh
from .resample import MonoResampler, block_samples, downmix, to_unit_range

CALLBACK_S = 0.02  # PortAudio block: 20 ms of native frames per callback
QUEUE_S = 4.0  # audio held between the callback and the reader before frames are dropped
RETRY_S = 1.0  # how often a missing device is looked for again
FIRST_RETRY_S = 0.25  # the first look, soon after it went away
STALL_S = 2.0  # a running stream silent (no callbacks at all) this long is treated as gone
FIRST_DATA_S = 5.0  # a new stream may take this long to deliver its first frames
IDLE_SLEEP_S = 0.01
CHECK_S = 0.05  # how often the reader looks at the streams' health


class _Channel:
    """One device: its stream, the callback's queue, and the reader's resampler and buffer."""

    def __init__(self, label: str, info: DeviceInfo, queue_s: float) -> None:
        self.label = label
        self.info = info
        self.stream: Any = None
        self.gen = 0  # bumps with every (re)opened stream
        self.queue_s = queue_s
        # Written by the callback thread only.
        self.items: deque = deque()  # (gen, rate, t_first | None, frames (n, c), zeros_before)
        self.cap = 1
        self.pending_t: float | None = None
        self.pending_drop = 0  # native frames lost since the last queued item
        self.next_adc: float | None = None
        self.dropped_native = 0.0  # as 16 kHz frames
        self.overruns = 0
        self.last_cb = 0.0
        self.dead = False  # the stream ended on its own (finished_callback)
        # The reader's.
        self.resampler: MonoResampler | None = None
        self.cur_gen = -1
        self.buf: list[np.ndarray] = []
        self.avail = 0
        self.produced = 0  # 16 kHz samples on the timeline, zeros included
        self.gap_zeros = 0  # zeros put in for a device that was away
        self.opened_at = 0.0
        self.gone_since: float | None = None
        self.next_try = 0.0

    @property
    def dropped(self) -> int:
        return int(self.dropped_native) + self.gap_zeros

    def take(self, n: int) -> np.ndarray:
        """The first `n` buffered samples (n <= avail)."""
        out = np.empty(n, np.float32)
        got = 0
        while got < n:
            head = self.buf[0]
            k = min(n - got, len(head))
            out[got : got + k] = head[:k]
            got += k
            if k == len(head):
                self.buf.pop(0)
            else:
                self.buf[0] = head[k:]
        self.avail -= n
        return out

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self.buf.append(np.asarray(samples, np.float32))
            self.avail += len(samples)
            self.produced += len(samples)


class CaptureSource(AudioSource):
    """Microphone and/or system audio as aligned 16 kHz float32 blocks.

    `devices` maps a channel label to a device (name, part of a name, or index; see
    `choose_device`), e.g. {"mic": "default", "system": "sink.monitor"}. Blocks are (n,) with
    one channel or `mix=True` (the mean of the channels), else (n, k) with columns in
    `channels` order. Devices open here (a bad one raises AudioError now, nothing is started);
    capture starts when iteration starts and ends after `close()` (from any thread), or when a
    device has been away longer than `reconnect_s`; what was captured is always delivered.
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(
        self,
        devices: Mapping[str, str | int | DeviceInfo | None],
        *,
        mix: bool = False,
        block_s: float = 0.1,
        reconnect_s: float = 30.0,
        queue_s: float = QUEUE_S,
    ) -> None:
        if not devices:
            raise ValueError("CaptureSource needs at least one device")
        if not queue_s > 0 or not reconnect_s >= 0:
            raise ValueError("queue_s must be positive and reconnect_s not negative")
        self.block_n = block_samples(block_s)
        self.block_s = block_s
        self.mix = mix
        self.reconnect_s = reconnect_s
        labels = tuple(devices)
        self.channels: tuple[str, ...] = ("mix",) if mix and len(labels) > 1 else labels
        self.live = True  # stopping the capture ends the meeting
        self.ended_reason: str | None = None  # why iteration ended on its own (a device gone)
        self._delivered = 0
        self._pause = (0.0, None)  # (total seconds paused, paused since) swapped as one object
        self._closing = False
        self._lock = threading.RLock()  # opening and closing streams
        self._iterating = False
        self._t0 = 0.0
        self._next_check = 0.0
        listed: list[DeviceInfo] | None = None
        self._ch: list[_Channel] = []
        try:
            for label, spec in devices.items():
                if isinstance(spec, DeviceInfo):
                    info = spec
                else:
                    listed = list_input_devices() if listed is None else listed
                    info = choose_device(spec, listed)
                ch = _Channel(label, info, queue_s)
                self._ch.append(ch)
                try:
                    self._open(ch)
                except AudioError:
                    raise
                except Exception as e:
                    raise AudioError(f"cannot open the {label} device {info.name!r}: {reason(e)}") from None
        except BaseException:
            self._close_streams()
            raise

    # -- what the recorder reads -----------------------------------------------------------
    @property
    def position_s(self) -> float:
        """Audio seconds delivered so far."""
        return self._delivered / SAMPLE_RATE

    @property
    def dropped_frames(self) -> int:
        """16 kHz frames of the timeline that hold zeros instead of audio: input overruns, a
        full queue (a reader that fell behind), a device that was away."""
        return max(ch.dropped for ch in self._ch)

    @property
    def overruns(self) -> int:
        """Times the input lost audio (PortAudio overflow or a full queue)."""
        return sum(ch.overruns for ch in self._ch)

    @property
    def missing(self) -> tuple[str, ...]:
        """Labels of the channels whose device is away right now."""
        return tuple(ch.label for ch in self._ch if ch.gone_since is not None)

    @property
    def devices(self) -> dict[str, DeviceInfo]:
        return {ch.label: ch.info for ch in self._ch}

    @property
    def paused(self) -> bool:
        return self._pause[1] is not None

    def pause(self) -> None:
        """Discard what the devices capture until `resume`; the timeline stops too."""
        total, since = self._pause
        if since is None:
            self._pause = (total, time.monotonic())

    def resume(self) -> None:
        total, since = self._pause
        if since is not None:
            self._pause = (total + time.monotonic() - since, None)

    def close(self) -> None:
        """Stop capturing (any thread). Iteration delivers what was captured, then ends."""
        with self._lock:
            self._closing = True
            self._close_streams()

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the reader --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        with self._lock:
            if self._iterating or self._closing:
                return
            self._iterating = True
            self._t0 = self._clock()
            for ch in self._ch:
                self._start(ch)
        try:
            while True:
                busy = self._drain()
                yield from self._emit()
                if self._closing:
                    break
                if self._check_devices():
                    break
                if not busy:
                    time.sleep(IDLE_SLEEP_S)
            self._close_streams()
            self._drain()
            yield from self._finish()
        finally:
            self.close()

    def _clock(self, now: float | None = None) -> float:
        """The capture clock: monotonic seconds minus the time spent paused."""
        now = time.monotonic() if now is None else now
        total, since = self._pause
        return now - total - (now - since if since is not None else 0.0)

    def _drain(self) -> bool:
        """Move queued frames into the channels' 16 kHz buffers; True if there were any."""
        busy = False
        for ch in self._ch:
            while ch.items:
                gen, rate, t_first, frames, zeros_before = ch.items.popleft()
                busy = True
                if gen != ch.cur_gen:
                    self._new_stream(ch, gen, rate, t_first)
                    ch.cur_gen = gen
                assert ch.resampler is not None
                if zeros_before:
                    ch.append(ch.resampler.process(np.zeros(zeros_before, np.float32)))
                ch.append(ch.resampler.process(downmix(frames)))
        return busy

    def _new_stream(self, ch: _Channel, gen: int, rate: int, t_first: float | None) -> None:
        """The first frames of a (re)opened stream: end the old stream's audio, then fill the
        time nothing arrived with zeros so this stream's audio lands where it belongs."""
        if ch.resampler is not None:
            ch.append(ch.resampler.flush())
        ch.resampler = MonoResampler(rate)
        if t_first is not None:
            gap = round((t_first - self._t0) * SAMPLE_RATE) - ch.produced
            if gap > 0:
                ch.append(np.zeros(gap, np.float32))
                if gen > 1:  # not the start: the device was away
                    ch.gap_zeros += gap
        ch.gone_since = None

    def _emit(self) -> Iterator[np.ndarray]:
        n = self.block_n
        while all(ch.avail >= n for ch in self._ch):
            yield self._block(n)

    def _block(self, n: int) -> np.ndarray:
        cols = [ch.take(n) for ch in self._ch]
        if len(cols) == 1:
            out = cols[0]
        elif self.mix:
            out = np.mean(cols, axis=0, dtype=np.float32)
        else:
            out = np.ascontiguousarray(np.stack(cols, axis=1))
        self._delivered += n
        return to_unit_range(out)

    def _finish(self) -> Iterator[np.ndarray]:
        """The end: flush the resamplers, pad channels that stopped early (a device away)
        with zeros, and deliver everything, the last block shorter."""
        for ch in self._ch:
            if ch.resampler is not None:
                ch.append(ch.resampler.flush())
                ch.resampler = None
        longest = max(ch.produced for ch in self._ch)
        for ch in self._ch:
            short = longest - ch.produced
            if short:
                ch.append(np.zeros(short, np.float32))
                if ch.gone_since is not None:
                    ch.gap_zeros += short
        yield from self._emit()
        rest = min(ch.avail for ch in self._ch)
        if rest:
            yield self._block(rest)

    # -- devices that go away -----------------------------------------------------------------
    def _check_devices(self) -> bool:
        """Notice streams that died or went silent, reopen them; True when one has been away
        too long (iteration then ends, keeping everything)."""
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_S
        for ch in self._ch:
            with self._lock:
                if self._closing:
                    return False
                if ch.stream is not None:
                    flowing = ch.last_cb > ch.opened_at
                    waited = now - max(ch.last_cb, ch.opened_at)
                    stalled = waited > (STALL_S if flowing else FIRST_DATA_S)
                    if flowing and not stalled:
                        ch.gone_since = None  # back (audio may still be held back by a pause)
                    if ch.dead or not _active(ch.stream) or stalled:
                        close_input(ch.stream)
                        ch.stream = None
                        if ch.gone_since is None:
                            ch.gone_since = now
                        ch.next_try = now + FIRST_RETRY_S
            if ch.gone_since is not None and now - ch.gone_since > self.reconnect_s:
                self.ended_reason = (f"the {ch.label} device {ch.info.name!r} went away and did not come "
                                     f"back within {self.reconnect_s:g} s")
                return True
            if ch.stream is None and now >= ch.next_try:
                ch.next_try = now + RETRY_S
                self._reopen(ch)
        return False

    def _reopen(self, ch: _Channel) -> None:
        with self._lock:
            if self._closing:
                return
            info = ch.info
            if info.pulse_source is None and refresh():
                # PortAudio lists only what existed when it started: look again, by name.
                found = [d for d in _quiet_list() if d.name == info.name and d.pulse_source is None]
                if not found:
                    return
                info = found[0]
            try:
                self._open(ch, info)
                self._start(ch)
            except Exception:
                close_input(ch.stream)
                ch.stream = None
                return
            ch.info = info

    def _open(self, ch: _Channel, info: DeviceInfo | None = None) -> None:
        info = info or ch.info
        ch.gen += 1
        gen, rate = ch.gen, info.rate
        ch.cap = max(2, math.ceil(ch.queue_s / CALLBACK_S))
        ch.pending_t = None
        ch.pending_drop = 0
        ch.next_adc = None
        ch.dead = False
        first = [True]

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            now = time.monotonic()
            ch.last_cb = now
            adc = getattr(time_info, "inputBufferAdcTime", 0.0) or 0.0
            if status.input_overflow:
                ch.overruns += 1
                if ch.next_adc is not None and adc > 0:
                    lost = round((adc - ch.next_adc) * rate)
                    if 0 < lost < 10 * rate:
                        ch.pending_drop += lost
                        ch.dropped_native += lost * SAMPLE_RATE / rate
            ch.next_adc = adc + frames / rate if adc > 0 else None
            if self._pause[1] is not None:
                return  # paused: heard, not kept
            if first[0]:
                first[0] = False
                latency = getattr(time_info, "currentTime", 0.0) - adc
                if not 0.0 <= latency < 1.0:
                    latency = frames / rate
                ch.pending_t = self._clock(now) - latency
            if len(ch.items) >= ch.cap:  # the reader is behind: drop, count, keep time
                ch.pending_drop += frames
                ch.dropped_native += frames * SAMPLE_RATE / rate
                ch.overruns += 1
                return
            ch.items.append((gen, rate, ch.pending_t, indata.copy(), ch.pending_drop))
            ch.pending_t = None
            ch.pending_drop = 0

        def finished() -> None:
            if ch.gen == gen and not self._closing:
                ch.dead = True

        ch.stream = open_input(info, callback, finished, blocksize=max(1, round(rate * CALLBACK_S)))
        ch.opened_at = time.monotonic()

    def _start(self, ch: _Channel) -> None:
        ch.opened_at = time.monotonic()
        ch.stream.start()

    def _close_streams(self) -> None:
        with self._lock:
            for ch in self._ch:
                stream, ch.stream = ch.stream, None
                close_input(stream)


def _active(stream: Any) -> bool:
    try:
        return bool(stream.active)
    except Exception:
        return False


def _quiet_list() -> list[DeviceInfo]:
    try:
        return list_input_devices()
    except AudioError:
        return []
