"""kyso benchmark harness (``make bench`` = ``python -m bench.run``).

Nothing here is a pytest test: no module is named ``test_*.py`` and importing the package has no
side effects. Each figure is printed beside the raw library measured in the same run, as a ratio.
"""
