"""``python -m liquidflow._native``: build the native kernels now (``make venv`` does) and report."""

from __future__ import annotations

import sys

from . import SOURCES, build, enabled


def main() -> int:
    if not enabled():
        print("liquidflow native kernels: disabled (LIQUIDFLOW_NATIVE=0)")
        return 0
    failed = 0
    for name in SOURCES:
        try:
            print(f"liquidflow native kernel {name}: {build(name)}")
        except RuntimeError as e:
            failed += 1
            print(f"liquidflow native kernel {name}: FAILED\n{e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
