"""`python -m gridcoord` is the same as the `gridcoord` command."""

from gridcoord.cli import main

main()
