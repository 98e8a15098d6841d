"""One exception type for bad input: a one-line message naming the file or key and the reason."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input. ``str(err)`` is ``"<where>: <reason>"`` on one line.

    ``where`` is a file path or a config key; ``reason`` says what is wrong with it.
    """

    def __init__(self, where: str | Path, reason: str):
        self.where = str(where)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.where}: {self.reason}")
