"""`python -m engine.training ...` / `torchrun --nproc_per_node=N -m engine.training ...` (see launch.main)."""

import sys

from .launch import main

sys.exit(main())
