"""`python -m vhw`: the `vhw` command without the installed script."""

import sys

from .cli import main

sys.exit(main())
