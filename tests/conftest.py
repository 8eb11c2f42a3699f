"""Make tests/reference.py and tests/helpers.py importable from every test folder."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the instructions-per-step table of the emulated-board runs (also under xdist)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "export"))
    try:
        from export_cases import print_instruction_summary
    except ImportError:  # the export tests are not part of this checkout
        return
    print_instruction_summary(terminalreporter, config)
