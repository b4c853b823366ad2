"""How a build goes, for whoever watches it: each stage as it starts, and counts as they grow.

The core only tells; the command line decides what to show and when (no module here prints).
"""

from __future__ import annotations

# Every stage a build goes through, in order; a build answered from its record stops after
# "fingerprint". Time before the first stage is the process's start-up (imports, locks, cache).
STAGES = (
    "start-up",
    "fingerprint",
    "helpers",
    "reading",
    "memo",
    "rendering",
    "lock",
    "packaging",
    "committing",
    "recording",
)


class Progress:
    """Hears a build's stages and counts, and does nothing with them: the quiet default."""

    def stage(self, name: str) -> None:
        """A stage (one of STAGES) starts; the one before it ends."""

    def count(self, what: str, n: int = 1) -> None:
        """Add `n` to a count: files, read, memo, rendered, written, unchanged, patched."""


QUIET = Progress()
