"""Task families. This package's ``__init__`` and :mod:`registry` stay free of torch imports."""
