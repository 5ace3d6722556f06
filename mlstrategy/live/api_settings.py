"""Where the control API listens and with which token: light enough for the CLI to import
at start (the server and its ASGI stack load only when a bot serves it)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

TOKEN_ENV = "MLSTRATEGY_API_TOKEN"


@dataclass(frozen=True)
class ApiSettings:
    """Where the API listens. ``port`` 0 takes a free port (the server says which)."""

    port: int
    host: str = "127.0.0.1"
    token: str | None = field(default=None, repr=False)  # never printed

    @classmethod
    def from_env(cls, port: int, host: str = "127.0.0.1") -> ApiSettings:
        """Settings with the token from ``MLSTRATEGY_API_TOKEN`` (None when unset or empty)."""
        return cls(port, host, os.environ.get(TOKEN_ENV) or None)
