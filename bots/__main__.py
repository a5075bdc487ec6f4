"""``python -m impasto.bots`` is the same as the ``impasto`` command."""

import sys

from impasto.bots.cli import main

sys.exit(main())
