"""The demo world: a fictional product ("Lumen Notes"), its simulated users and support agent, its sample
traffic and its tiny model's pre-training text, and the two-week demo that runs the flywheel on them.

The demo is one user of the flywheel, not part of it: no module outside ``demo/`` imports it (a test checks),
and it hands its facts to the evaluation gate as an eval-set file, like any user would. ``flywheel demo``
comes from the ``flywheel.commands`` entry point this package declares (or run ``python -m demo``).
"""
