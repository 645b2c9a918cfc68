"""`python -m bench` when the repository root is on sys.path; `python bench/run.py` otherwise."""
import sys

from bench.run import main

sys.exit(main())
