"""Runtime: the only code that interprets definitions — field types, compilers, records, UI, API."""
