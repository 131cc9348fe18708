"""Moves a test's Python child process to the test run's shifted clock (tests/shifted_clock.py).

Loaded by ``site`` at start-up because the test run puts this folder on ``PYTHONPATH``. Kept
to Python 3.7 syntax: older interpreters (the agent's) load it too, and without time-machine
installed they keep the real clock, so the tests give them their time explicitly.
"""

import os

_OFFSET = os.environ.get("TEST_CLOCK_OFFSET_SECONDS")
if _OFFSET:
    try:
        import time

        import time_machine
    except ImportError:
        pass
    else:
        time_machine.travel(time.time() + float(_OFFSET), tick=True).start()
        # this process is moved: the pytest plugin must not move it again (an xdist worker)
        os.environ["TEST_CLOCK_SHIFTED_PID"] = str(os.getpid())
