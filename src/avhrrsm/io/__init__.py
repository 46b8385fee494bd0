"""Readers (and small writers) for every input product."""
