"""Private building blocks: input checks, the memory budget, atomic storage, BLAS views, dense linear algebra.

Nothing here is public API; the public modules import from it.
"""
