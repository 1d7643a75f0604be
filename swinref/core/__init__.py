"""Backend shim, numerics, window ops, shared layers, the params contract and the one cache:
everything every family uses."""
