"""``python -m amc``: the same as the ``amc`` command."""

from amc.cli import main

main()
