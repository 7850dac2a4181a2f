"""`python -m rolecraft` (and `accelerate launch -m rolecraft train ...`) runs the CLI."""

from rolecraft.cli import main

main()
