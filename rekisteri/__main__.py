"""`python -m rekisteri`: the same as the `rekisteri` command."""

from rekisteri.cli import main

main()
