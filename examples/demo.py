"""The quickstart demo: ``make demo`` (or ``python examples/demo.py [STORE_URL]``)."""

from __future__ import annotations

import sys

from lifecycle._demo import main

if __name__ == "__main__":
    sys.exit(main())
