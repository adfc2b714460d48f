"""`python -m vhw.cli`: the `vhw` command without the installed script."""

import sys

from . import main

sys.exit(main())
