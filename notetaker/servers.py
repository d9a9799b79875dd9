"""OpenAI-compatible servers people already run on this machine (Ollama, LM Studio,
llama.cpp's llama-server, mlx_lm.server), found on loopback at the ports `openai_detect`
names, once per process: the plan, `doctor`, `summarize` and the TUI see the same ones."""

from __future__ import annotations

from functools import lru_cache

from rewrite.openai_compat import Server, detect_servers

from notetaker.config import ConfigError, Settings

OFF_WORDS = ("", "off", "none", "no", "false", "0")


def detect_ports(settings: Settings) -> tuple[int, ...]:
    """The ports `openai_detect` names; one-line ConfigError for anything but port numbers."""
    raw = (settings.openai_detect or "").strip().lower()
    if raw in OFF_WORDS:
        return ()
    ports = []
    for part in raw.replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ConfigError(f"openai_detect must be port numbers separated by commas, or off; not {part!r}")
        ports.append(int(part))
    return tuple(ports)


@lru_cache(maxsize=8)
def _detect(ports: tuple[int, ...]) -> tuple[Server, ...]:
    return tuple(detect_servers(ports))


def servers(settings: Settings) -> list[Server]:
    """The servers found (looked for once per process and set of ports)."""
    ports = detect_ports(settings)
    return list(_detect(ports)) if ports else []


def describe(label: str, url: str, models) -> str:
    """"Ollama at http://127.0.0.1:11434/v1 (serves llama3.2, qwen2.5)"."""
    served = ", ".join(models[:6]) + (" …" if len(models) > 6 else "") if models else "its default model"
    return f"{label} at {url} (serves {served})"
