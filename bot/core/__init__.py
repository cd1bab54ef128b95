"""The bottom layer: persistence (``store``), settings (``config``), the extension seam's
types (``plugins``), the clock, errors and the built binaries.  Imported by every layer
above; imports none of them.
"""

__all__ = ['binaries', 'clock', 'config', 'errors', 'plugins', 'store']
