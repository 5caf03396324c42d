"""``python -m dscore.book``: see :mod:`dscore.book.cli`."""
import sys

from .cli import main

sys.exit(main())
