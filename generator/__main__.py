"""`python -m generator`: run the command, then end the process without tearing the interpreter down.

A build leaves a large heap of SymPy objects and caches behind, and freeing it all at exit took
about 0.2 s, as long as two no-op rebuilds. By the time the command returns, everything it
writes is complete and closed (output folder, worker processes, TeX), so the streams are
flushed and the process ends at once. Errors that escape as exceptions (usage errors, --debug)
take Python's usual way out.
"""

import os
import sys

from generator.cli import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
