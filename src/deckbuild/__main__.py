"""Run the command line as `python -m deckbuild`."""

from __future__ import annotations

import sys

from deckbuild.launch import entry, main

if vars(sys.modules["__main__"]) is globals():
    entry()  # the program itself: it ends as soon as the command is done
else:
    main()  # run by another program in its process (runpy, a profiler, a debugger), which goes on
