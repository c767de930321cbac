"""Private building blocks of the library.

Input checks, the memory budget, atomic storage, BLAS views and dense linear algebra. Nothing here is public
API; the public modules import from it.
"""
