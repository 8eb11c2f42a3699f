"""Make tests/reference.py and tests/helpers.py importable from every test folder."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# Lightning attaches a StreamHandler bound to the sys.stderr of the moment it is first imported. When
# that first import happens inside a CliRunner invocation (the commands import it lazily), the handler
# keeps the runner's stream, which is closed afterwards: every later Lightning log line then prints a
# "--- Logging error --- Traceback" into whichever command output is being captured. Importing it here,
# once, binds the handler to the test session's stderr.
import lightning.pytorch  # noqa: F401


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the instructions-per-step table of the emulated-board runs (also under xdist)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "export"))
    try:
        from export_cases import print_instruction_summary
    except ImportError:  # the export tests are not part of this checkout
        return
    print_instruction_summary(terminalreporter, config)
