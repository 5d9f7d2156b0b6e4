"""`python -m loyalpos.cli`: the command line without its console script."""

from loyalpos.cli import main

main()
