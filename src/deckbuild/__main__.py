"""Run the command line as `python -m deckbuild`."""

from __future__ import annotations

from deckbuild.launch import entry

entry()
