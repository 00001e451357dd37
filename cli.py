#!/usr/bin/env python3
"""`python cli.py …` from a checkout is `netspec …`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netspec.cli import main  # noqa: E402

raise SystemExit(main())
