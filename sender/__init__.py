"""Newsletter pipeline: issue -> render -> message -> transport.

The library never prints and never imports click; ``sender.cli`` is the only
place that talks to the terminal.
"""

__version__ = "0.1.0"
