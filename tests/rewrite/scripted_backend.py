"""A test double for rewrite backends: replies come from a script (a list, taken in order)
or from a function of the messages; tokens are whitespace words or chars/4; a reply is cut
at `max_tokens` as a real model's would be, and streamed in small pieces. Every call is
recorded."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rewrite.backend import RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError

Reply = str | Callable[[list[Message], int], str]


@dataclass(frozen=True)
class Call:
    messages: list[Message]
    max_tokens: int
    temperature: float
    reply: str

    @property
    def system(self) -> str:
        return self.messages[0].content

    @property
    def user(self) -> str:
        return self.messages[-1].content


class ScriptedBackend(RewriteBackend):
    name = "scripted"

    def __init__(self, replies: Sequence[str] | Callable[[list[Message], int], str] = (),
                 context_tokens: int = 4096, counting: str = "words", model: str = "scripted-1"):
        assert counting in ("words", "chars")
        self._replies = replies if callable(replies) else list(replies)
        self.context_tokens = context_tokens
        self.counting = counting
        self.model = model
        self.calls: list[Call] = []
        self.closed = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.name, self.model, self.context_tokens)

    def count_tokens(self, text: str) -> int:
        if self.counting == "words":
            return len(text.split())
        return math.ceil(len(text) / 4)

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """The bare sum of the messages' tokens (no chat-template allowance)."""
        return sum(self.count_tokens(m.content) for m in messages)

    def _cut(self, text: str, max_tokens: int) -> str:
        if self.count_tokens(text) <= max_tokens:
            return text
        if self.counting == "chars":
            return text[: max_tokens * 4]
        pieces = re.findall(r"\s*\S+", text)
        return "".join(pieces[:max_tokens])

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        msgs = list(messages)
        if callable(self._replies):
            reply = self._replies(msgs, max_tokens)
        elif self._replies:
            reply = self._replies.pop(0)
        else:
            raise RewriteError("scripted backend: no reply left")
        reply = self._cut(reply, max_tokens)
        self.calls.append(Call(msgs, max_tokens, temperature, reply))
        return iter(re.findall(r"\s*\S+|\s+$", reply))  # word by word: the text streams

    def close(self) -> None:
        self.closed = True
