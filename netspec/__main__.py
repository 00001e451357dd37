"""`python -m netspec …` (and `torchrun -m netspec …`) runs the CLI."""

from netspec.cli import main

raise SystemExit(main())
