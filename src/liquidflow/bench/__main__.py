"""``python -m liquidflow.bench``: see :func:`liquidflow.bench.main`."""

from . import main

raise SystemExit(main())
