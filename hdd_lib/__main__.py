"""``python -m hdd_lib``: see :mod:`hdd_lib.cli`."""

import sys

from .cli import main

sys.exit(main())
