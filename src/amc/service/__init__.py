"""``amc serve`` and ``amc worker``: searches over HTTP, run by workers sharing one store."""
