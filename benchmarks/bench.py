"""Benchmark liquidflow against ncps 1.0.1 and torch's LSTM/GRU (see src/liquidflow/bench.py).

python benchmarks/bench.py                 # full run, 2 threads -> benchmarks/results/latest.{json,md}
python benchmarks/bench.py --quick         # sanity run (seconds)
python benchmarks/bench.py --threads 1     # single-threaded
python benchmarks/bench.py --sections train stream --models cfc64 ltc_ncp
"""

from __future__ import annotations

import sys

from liquidflow.bench import main

if __name__ == "__main__":
    sys.exit(main())
