"""``python -m cronclaim``: the same as the ``cronclaim`` command."""

import sys

from cronclaim.cli import main

sys.exit(main())
