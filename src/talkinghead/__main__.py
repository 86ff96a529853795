"""``python -m talkinghead`` is the command line (so ``torchrun ... -m talkinghead train ...`` works)."""

import sys

from .cli import main

sys.exit(main())
