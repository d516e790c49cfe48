"""``nexus-lab eval`` and ``nexus.eval()``: how well does a model answer on this data?

A suite's questions go through the assistant as a person asks them, and each answer is scored
by execution accuracy against the suite's gold SQL: suite.py (loading and checking suites),
score.py (comparing results), runner.py (running a suite), report.py (the run as data, the
comparison with a saved run), text.py (the run for the terminal), suites/ (the bundled suite).
"""
