"""I/O shells of the facade: async modules are the source, sync ones generated."""
