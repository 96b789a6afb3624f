"""`python -m lab` runs the CLI (used by tests and when the console script is not on PATH)."""

from lab.cli import main

main()
