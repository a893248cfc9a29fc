"""``python -m c2s.cli`` (what ``torchrun -m`` and ``accelerate launch -m`` run)."""

import sys

from c2s.cli import main

sys.exit(main())
