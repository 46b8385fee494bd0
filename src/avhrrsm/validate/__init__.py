"""Validation of the product against in-situ networks, and intercomparison with peer products."""
