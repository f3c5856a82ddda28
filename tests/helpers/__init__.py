"""What the tests share, in one place; no test module imports another.

* :mod:`helpers.oracles`: the references the numerical tests compare with: the extraction LP
  solved exactly by HiGHS, and literal definitions (matrices and sums over masks, built by loops).
* :mod:`helpers.report_history`: a synthetic monitored run (records, losses, a made-up replay)
  for the report, plot, logger and loss tests.
* :mod:`helpers.figures`: reading matplotlib figures back (PNG bytes, the epochs marked).
* :mod:`helpers.scripted_run`: a Lightning run with written-down validation losses and a fake
  alert, for Lightning's ``EarlyStopping``, ``InteractionEarlyStopping`` and the stopping rules.
* :mod:`helpers.processes`: a guarded subprocess in its own process group, and an environment
  without an enclosing launcher's variables (the DDP, logger and fault tests).

``pyproject.toml`` puts ``tests/`` on ``sys.path`` for pytest, so tests import these as
``from helpers.oracles import exact_optimum``; pytest fixtures live in ``conftest.py`` files
(``tests/plot/conftest.py``).
"""
