"""Start the command line, with a helper already warming up for the commands that render cards.

Importing pydantic, Markdown and Pygments takes a helper a quarter of a second. Forked here,
before click is even imported, it is ready by the time a rebuild knows which cards changed,
instead of that much later; a command that renders nothing stops it as it exits.
"""

from __future__ import annotations

import os
import sys

# The commands that validate and render cards (and so take on a helper), by their first argument.
RENDERING = frozenset({"build", "check", "preview", "release", "import"})


def main() -> None:
    """Run the command line, forking the first helper early when the command renders cards."""
    if len(sys.argv) > 1 and sys.argv[1] in RENDERING and (os.cpu_count() or 1) > 1:
        from deckbuild.workers import prefork

        prefork("deckbuild.build:_warm", "deckbuild.build:_warm_packaging")
    from deckbuild.cli import main as run

    run()
