"""Async source of the facade's I/O shells; ``ksef_facade._sync`` is generated from it."""
