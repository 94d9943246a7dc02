"""``python -m ferrox <step>``: the same as the ``ferrox`` console script."""

import sys

from .cli import main

sys.exit(main())
