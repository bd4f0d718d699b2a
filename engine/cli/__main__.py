"""``python -m engine.cli`` is the same as the ``umkm`` console script."""

from engine.cli import main

main()
