"""In-place BLAS/LAPACK on NumPy views (sub-blocks of larger float64 arrays), with no copies.

SciPy's `scipy.linalg.blas` wrappers copy any operand that is not contiguous, so a triangular solve with the
leading block of a 25,000 x 25,000 factor would copy it.  The same routines are exported, with their
leading-dimension arguments, as function pointers by `scipy.linalg.cython_blas` / `cython_lapack`; this
module calls them through ctypes on the memory of NumPy views.

Convention: every matrix argument is a 2-D float64 NumPy view with unit stride along one axis (a slice of a
C- or Fortran-ordered array).  A view `v` with unit stride along axis 1 is, in BLAS's column-major terms, the
matrix v^T with leading dimension v.strides[0] / 8; the functions below take care of the transposes, so the
results are stated in NumPy terms (`gemm`: c <- alpha a @ b + beta c).  Triangular routines state which
triangle *of the NumPy view* they read.
"""
from __future__ import annotations

import ctypes
from typing import Tuple

import numpy as np
import scipy.linalg.cython_blas as _cblas
import scipy.linalg.cython_lapack as _clapack

_P = ctypes.c_void_p
_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype, _get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
_get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
_get_ptr.restype, _get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]


def _fn(module, name: str, n_args: int):
    capsule = module.__pyx_capi__[name]
    return ctypes.CFUNCTYPE(None, *([_P] * n_args))(_get_ptr(capsule, _get_name(capsule)))


def _openblas():
    """SciPy's OpenBLAS (the library behind cython_blas), if it can be found, for its thread count."""
    import glob
    import os
    here = os.path.join(os.path.dirname(os.path.dirname(_cblas.__file__)), "..", "scipy.libs")
    for path in glob.glob(os.path.join(os.path.abspath(here), "libscipy_openblas*.so")):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "scipy_openblas_set_num_threads") and hasattr(lib, "scipy_openblas_get_num_threads"):
            return lib
    return None


_OPENBLAS = _openblas()


class one_thread:
    """Context manager: SciPy's OpenBLAS runs single-threaded inside.

    For small factorizations, where waking a second thread on a busy 2-core machine cost 10-100x their
    work.  The previous thread count is restored on exit; a no-op if the library is not found.
    """

    def __enter__(self):
        self.n = _OPENBLAS.scipy_openblas_get_num_threads() if _OPENBLAS is not None else 1
        if self.n > 1:
            _OPENBLAS.scipy_openblas_set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.n > 1:
            _OPENBLAS.scipy_openblas_set_num_threads(self.n)


_DGEMM = _fn(_cblas, "dgemm", 13)
_DTRSM = _fn(_cblas, "dtrsm", 11)
_DTRMM = _fn(_cblas, "dtrmm", 11)
_DPOTRF = _fn(_clapack, "dpotrf", 5)
_DTRTRI = _fn(_clapack, "dtrtri", 6)


def _c(ch: str):
    return ctypes.byref(ctypes.c_char(ch.encode()))


def _i(v: int):
    return ctypes.byref(ctypes.c_int(int(v)))


def _d(v: float):
    return ctypes.byref(ctypes.c_double(float(v)))


def _col_major(v: np.ndarray, name: str, write: bool = False) -> Tuple[bool, int]:
    """(transposed, ld): the view is the column-major matrix M (transposed False) or M^T (True), leading dim ld."""
    if not isinstance(v, np.ndarray) or v.dtype != np.float64 or v.ndim != 2:
        raise TypeError(f"{name}: expected a 2-D float64 NumPy view, got {type(v).__name__}")
    if write and not v.flags.writeable:
        raise ValueError(f"{name}: expected a writeable view")
    r, c = v.shape
    s0, s1 = v.strides
    if (s1 == 8 or c == 1) and s0 >= 8 * max(c, 1) and s0 % 8 == 0:
        return True, max(s0 // 8, c, 1)
    if (s0 == 8 or r == 1) and s1 >= 8 * max(r, 1) and s1 % 8 == 0:
        return False, max(s1 // 8, r, 1)
    if r <= 1 and c <= 1:
        return False, 1
    raise ValueError(f"{name}: expected unit stride along one axis, got strides {v.strides} for shape {v.shape}")


def _ptr(v: np.ndarray):
    return ctypes.c_void_p(v.ctypes.data)


def gemm(c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> None:
    """C <- alpha a @ b + beta c in place (c a view with unit stride along axis 1; beta = 0 ignores c's contents).

    Args:
        c: the (m, n) output view, written in place.
        a: the (m, k) left factor.
        b: the (k, n) right factor.
        alpha: the scalar multiplying a @ b (default 1.0).
        beta: the scalar multiplying c (default 0.0: c's contents are ignored).

    Raises:
        TypeError: if an operand is not a 2-D float64 NumPy array.
        ValueError: if the shapes do not match, `c` is not writeable or an operand has no unit stride
            (`c` along axis 1).
    """
    m, n = c.shape
    k = a.shape[1]
    if a.shape != (m, k) or b.shape != (k, n):
        raise ValueError(f"gemm: shapes {a.shape} @ {b.shape} do not give {c.shape}")
    tc, ldc = _col_major(c, "c", write=True)
    if not tc and m > 1 and n > 1:
        raise ValueError("c: expected unit stride along axis 1")
    if m == 0 or n == 0:
        return
    if k == 0:
        c *= beta
        return
    # column-major: c^T = b^T a^T.  A view stored as M^T (tb True) is b = M^T, so b^T = M: no transpose.
    tb, ldb = _col_major(b, "b")
    ta, lda = _col_major(a, "a")
    _DGEMM(_c("N" if tb else "T"), _c("N" if ta else "T"), _i(n), _i(m), _i(k), _d(alpha), _ptr(b), _i(ldb),
           _ptr(a), _i(lda), _d(beta), _ptr(c), _i(max(ldc, 1)))


def _square_lower(t: np.ndarray, name: str) -> int:
    """The leading dimension of a C-ordered-like square view whose lower triangle (NumPy terms) is used."""
    transposed, ld = _col_major(t, name)
    if t.shape[0] != t.shape[1] or not (transposed or t.shape[0] <= 1):
        raise ValueError(f"{name}: expected a square view with unit stride along axis 1, got {t.shape}, {t.strides}")
    return ld


def potrf_lower(a: np.ndarray) -> int:
    """Cholesky in place: the lower triangle of the square view `a` (NumPy terms) becomes L with A = L L^T.

    Only the lower triangle is read and written.

    Args:
        a: a square float64 view with unit stride along axis 1.

    Returns:
        LAPACK's info (0: success; > 0: not positive definite at that pivot).
    """
    ld = _square_lower(a, "a")
    info = ctypes.c_int(0)
    _DPOTRF(_c("U"), _i(a.shape[0]), _ptr(a), _i(ld), ctypes.byref(info))
    return int(info.value)


def trtri_lower(a: np.ndarray) -> int:
    """Invert in place the lower-triangular matrix held in the lower triangle of the square view `a`.

    Args:
        a: a square float64 view with unit stride along axis 1.

    Returns:
        LAPACK's info (0: success; > 0: a zero diagonal entry).
    """
    ld = _square_lower(a, "a")
    info = ctypes.c_int(0)
    _DTRTRI(_c("U"), _c("N"), _i(a.shape[0]), _ptr(a), _i(ld), ctypes.byref(info))
    return int(info.value)


def solve_lower_rows(l: np.ndarray, bt: np.ndarray) -> None:
    """Bt <- bt L^{-T} in place, i.e. the columns of B = bt^T become L^{-1} B (forward substitution).

    Args:
        l: (n, n) view whose lower triangle is L.
        bt: (m, n) view with unit stride along axis 1: B^T for B with n rows.

    Raises:
        ValueError: if `bt` does not have n columns and unit stride along axis 1.
    """
    ld = _square_lower(l, "l")
    tb, ldb = _col_major(bt, "bt", write=True)
    if bt.shape[1] != l.shape[0] or not (tb or bt.shape[0] <= 1):
        raise ValueError(f"bt: expected shape (m, {l.shape[0]}) with unit stride along axis 1, got {bt.shape}")
    if bt.size:
        _DTRSM(_c("L"), _c("U"), _c("T"), _c("N"), _i(bt.shape[1]), _i(bt.shape[0]), _d(1.0), _ptr(l), _i(ld),
               _ptr(bt), _i(ldb))


def right_solve_lower_t(l: np.ndarray, b: np.ndarray) -> None:
    """B <- L^{-1} b in place, where b is a (n, m) view with unit stride along axis 1 (rows = L's dimension).

    In column-major terms b is B^T (m x n) and B^T <- B^T L^{-T}: dtrsm from the right with the upper factor.

    Args:
        l: (n, n) view whose lower triangle is L.
        b: (n, m) view with unit stride along axis 1, overwritten.

    Raises:
        ValueError: if `b` does not have n rows and unit stride along axis 1.
    """
    ld = _square_lower(l, "l")
    tb, ldb = _col_major(b, "b", write=True)
    if b.shape[0] != l.shape[0] or not (tb or b.shape[1] <= 1):
        raise ValueError(f"b: expected shape ({l.shape[0]}, m) with unit stride along axis 1, got {b.shape}")
    if b.size:
        _DTRSM(_c("R"), _c("U"), _c("N"), _c("N"), _i(b.shape[1]), _i(b.shape[0]), _d(1.0), _ptr(l), _i(ld),
               _ptr(b), _i(ldb))


def times_lower(bt: np.ndarray, l: np.ndarray) -> None:
    """Bt <- bt @ L in place.

    Args:
        bt: (m, n) view with unit stride along axis 1, overwritten.
        l: (n, n) view whose lower triangle is L.

    Raises:
        ValueError: if `bt` does not have n columns and unit stride along axis 1.
    """
    ld = _square_lower(l, "l")
    tb, ldb = _col_major(bt, "bt", write=True)
    if bt.shape[1] != l.shape[0] or not (tb or bt.shape[0] <= 1):
        raise ValueError(f"bt: expected shape (m, {l.shape[0]}) with unit stride along axis 1, got {bt.shape}")
    if bt.size:  # column-major: (bt)^T <- L^T (bt)^T, L^T the upper triangle of the column-major view of l
        _DTRMM(_c("L"), _c("U"), _c("N"), _c("N"), _i(bt.shape[1]), _i(bt.shape[0]), _d(1.0), _ptr(l), _i(ld),
               _ptr(bt), _i(ldb))


BLOCK = 1024
"""Block size of `cholesky_lower` and `forward_solve_rows`: their diagonal blocks go to LAPACK/BLAS directly, the
rest (almost all of the flops) to GEMM, which keeps its speed on a shared machine where OpenBLAS's threaded
dpotrf and dtrsm lose 10x or more to synchronization (measured on 2 busy cores: dpotrf of 2048 took 0.7-9 s
inside a sweep against 0.1 s alone)."""


def cholesky_lower(a: np.ndarray, block: int = BLOCK) -> int:
    """Blocked right-looking Cholesky in place on the lower triangle of the square view `a` (NumPy terms).

    The diagonal blocks go to LAPACK on one thread, the panels to triangular solves and the update to GEMM.
    The strictly upper part of each diagonal block is overwritten with scratch values; nothing else above the
    diagonal is touched.

    Args:
        a: a square float64 view with unit stride along axis 1.
        block: the block size (default BLOCK).

    Returns:
        LAPACK's info (0: success; else the 1-based index of the first failing pivot).
    """
    n = a.shape[0]
    for k0 in range(0, n, block):
        k1 = min(k0 + block, n)
        with one_thread():
            info = potrf_lower(a[k0:k1, k0:k1])
        if info:
            return k0 + info
        if k1 == n:
            break
        solve_lower_rows(a[k0:k1, k0:k1], a[k1:, k0:k1])  # L21 = A21 L11^{-T}
        for j0 in range(k1, n, block):  # A22 -= L21 L21^T, lower block columns only
            j1 = min(j0 + block, n)
            gemm(a[j0:, j0:j1], a[j0:, k0:k1], a[j0:j1, k0:k1].T, -1.0, 1.0)
    return 0


def forward_solve_rows(l: np.ndarray, bt: np.ndarray, block: int = BLOCK) -> None:
    """The same as `solve_lower_rows` (bt <- bt L^{-T}), blocked.

    A small triangular solve per block of L's rows and a GEMM update of the remaining columns of bt
    (few right-hand sides, at most 64 rows of bt: one call on one thread).

    Args:
        l: (n, n) view whose lower triangle is L.
        bt: (m, n) view with unit stride along axis 1, overwritten by bt L^{-T}.
        block: the block size (default BLOCK).
    """
    if bt.shape[0] <= 64:  # a few right-hand sides (the targets): one thread, one call
        with one_thread():
            solve_lower_rows(l, bt)
        return
    n = l.shape[0]
    for k0 in range(0, n, block):
        k1 = min(k0 + block, n)
        solve_lower_rows(l[k0:k1, k0:k1], bt[:, k0:k1])
        if k1 < n:
            gemm(bt[:, k1:], bt[:, k0:k1], l[k1:, k0:k1].T, -1.0, 1.0)


__all__ = ["BLOCK", "cholesky_lower", "forward_solve_rows", "gemm", "one_thread", "potrf_lower",
           "right_solve_lower_t", "solve_lower_rows", "times_lower", "trtri_lower"]
