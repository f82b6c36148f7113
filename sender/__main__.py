"""``python -m sender`` is the same as the ``newsletter`` command."""

from .cli import main

main()
