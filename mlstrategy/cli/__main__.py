"""``python -m mlstrategy.cli`` runs the ``mlstrategy`` command."""
from mlstrategy.cli import main

main()
