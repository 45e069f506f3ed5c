"""A CPU emulation of CuPy's *semantics* (not its speed), for tests only.

`installed()` puts a fake `cupy` and `cupyx` in `sys.modules` (and clears
`engine.backend._cupy_or_none`'s cache), so that `engine.backend` takes it for a CUDA device and
the engine's `xp=cupy` code paths run here, on NumPy underneath. The arrays behave as CuPy's do
where CuPy differs from NumPy, so code that would break on a real GPU breaks here too:

- `ndarray.__array__` raises TypeError: `np.asarray(device_array)`, NumPy functions that convert
  their input and SciPy on device arrays fail as on CuPy. `.get()` and `asnumpy` copy to the host.
- Ufuncs and operators reject `numpy.ndarray` operands ("Unsupported type <class
  'numpy.ndarray'>"), 0-d ones included (CuPy's kernels take Python and NumPy *scalars* only);
  comparisons turn a 0-d NumPy array into a scalar first (`__array_ufunc__`, as CuPy does).
  NumPy functions called on device arrays dispatch to this module (`__array_function__`) and
  `np.<ufunc>(device_array)` to its ufuncs (`__array_ufunc__`), as CuPy's do; ufunc methods
  (`np.add.at(device, ...)`) are refused.
- Module functions reject NumPy arrays except where CuPy copies them to the device
  (`asarray`, `array`, ... and the `*_like` creators). Indexing with NumPy or list indices is
  allowed (CuPy uploads them); integer index arrays wrap out-of-bounds indices; assignment through
  repeated indices keeps the *first* value (CuPy: an arbitrary one; NumPy: the last), so code that
  relies on NumPy's last-wins shows up as a difference. Assigning a non-0-d NumPy array through a
  basic index (slice) raises ValueError (CuPy's `fill`); through an advanced index it is uploaded.
- Reductions and scalar indexing return 0-d arrays, not NumPy scalars; `float()`, `int()`,
  `bool()`, `.item()`, `.tolist()` work (each one is a host synchronisation and is counted in
  `STATS`). `sort`/`argsort` are stable and refuse any other `kind` (CuPy sorts with Thrust).
- `ufunc.at` exists for add, subtract, maximum, minimum and the bitwise ops, with CuPy's dtype
  limits (add: no int64; maximum/minimum: no int64, no bool); `reduceat` for add only.
- Names CuPy lacks (`MISSING`) raise AttributeError.

`STATS` counts host synchronisations (`STATS["sync"]`, by kind in `STATS`), and `CALLS` every
module function and array method the code under test used on the emulated module, so a test or a
person can list the CuPy API surface a code path needs.

Knowingly looser than CuPy (see tests/engine/test_cupy_semantics.py and the report): floating
sums run in NumPy's order (CuPy's reductions, atomics and cuBLAS add in other orders, so real runs
differ from NumPy in the last bits); dtype promotion follows the installed NumPy's; kernel
argument and dtype limits beyond those listed above are not modelled; `cupyx.scipy` functions are
SciPy's (CuPy's `distance_transform_edt` breaks ties between equidistant sites differently).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import sys
import types
import warnings

import numpy as np
import scipy.ndimage
import scipy.sparse

STATS: collections.Counter = collections.Counter()
CALLS: collections.Counter = collections.Counter()

_SCALAR_TYPES = (bool, int, float, complex, np.generic)
_UNSUPPORTED = "Unsupported type {}"

# NumPy names CuPy (13/14) does not provide. Not exhaustive: the ones a numerical engine could
# plausibly reach for (checked against CuPy's API reference / comparison table).
MISSING = frozenset({
    "errstate", "seterr", "geterr", "seterrcall", "geterrcall", "nditer", "ndenumerate", "ndindex",
    "frompyfunc", "busday_count", "busday_offset", "is_busday", "datetime_as_string",
    "datetime_data", "fromregex", "genfromtxt", "loadtxt", "savetxt", "memmap", "recarray",
    "chararray", "matrix", "asmatrix", "bmat", "mat", "char", "rec", "ma", "polynomial", "ctypeslib",
    "add_newdoc", "deprecate", "safe_eval", "lookfor", "info", "source", "who", "disp",
})

# Module functions that take host (NumPy) arrays: CuPy copies them to the device.
_HOST_INPUT_OK = frozenset({
    "asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray", "copy",
    "empty_like", "zeros_like", "ones_like", "full_like", "ndim", "shape", "isscalar",
    "result_type", "can_cast", "min_scalar_type", "get_array_module", "asnumpy",
})

_AT_DTYPES = {  # cupy/_core/_routines_indexing.pyx, _scatter_op_single
    "add": (np.int32, np.float16, np.float32, np.float64, np.uint32, np.uint64),
    "subtract": (np.int32, np.uint32),
    "maximum": (np.int32, np.float32, np.float64, np.uint32, np.uint64),
    "minimum": (np.int32, np.float32, np.float64, np.uint32, np.uint64),
    "bitwise_and": (np.int32, np.int64, np.uint32, np.uint64),
    "bitwise_or": (np.int32, np.int64, np.uint32, np.uint64),
    "bitwise_xor": (np.int32, np.int64, np.uint32, np.uint64),
}
_REDUCE_OK = frozenset({"add", "multiply", "maximum", "minimum", "logical_and", "logical_or",
                        "bitwise_and", "bitwise_or", "bitwise_xor"})
_ACCUMULATE_OK = frozenset({"add", "multiply"})
_COMPARISONS = frozenset({"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"})


def _sync(kind: str) -> None:
    STATS["sync"] += 1
    STATS[kind] += 1


def _reject_host(x, what: str):
    raise TypeError(_UNSUPPORTED.format(type(x)) + f" ({what}: CuPy does not take NumPy arrays here)")


def _unwrap(x, host_ok: bool, what: str):
    """NumPy values of x (an emulated array, or lists/tuples/dicts of them); NumPy arrays raise
    TypeError unless host_ok."""
    t = type(x)
    if t is ndarray:
        return x._a
    if isinstance(x, np.ndarray):
        if host_ok:
            return x
        _reject_host(x, what)
    if t is list or t is tuple:
        return t(_unwrap(i, host_ok, what) for i in x)
    if t is dict:
        return {k: _unwrap(v, host_ok, what) for k, v in x.items()}
    if isinstance(x, _SparseMatrix):
        raise TypeError(f"{what}: a cupyx sparse matrix is not a dense array")
    return x


def _wrap(r):
    """Emulated arrays for NumPy results: arrays, and NumPy scalars as 0-d arrays (CuPy's
    reductions and scalar indexing return 0-d arrays); tuples and lists element-wise."""
    if isinstance(r, np.ndarray):
        return ndarray._from(r)
    if isinstance(r, np.generic):
        return ndarray._from(np.asarray(r))
    if type(r) is tuple or type(r) is list:
        return type(r)(_wrap(i) for i in r)
    if isinstance(r, tuple) and hasattr(r, "_fields"):  # namedtuples (unique_all, ...)
        return type(r)(*(_wrap(i) for i in r))
    return r


# ------------------------------------------------------------------------------------------------
# Indexing


def _index_parts(idx):
    parts = idx if type(idx) is tuple else (idx,)
    out, advanced, n_bool = [], False, 0
    for p in parts:
        if type(p) is ndarray:
            p = p._a
        elif isinstance(p, list):
            p = np.asarray(_unwrap(p, True, "index"))
        if isinstance(p, np.ndarray) and p.ndim > 0 or isinstance(p, np.ndarray) and p.dtype == bool:
            advanced = True
            if p.dtype == bool:
                n_bool += 1
        elif isinstance(p, np.ndarray):  # 0-d integer array: an integer
            p = p[()]
        out.append(p)
    if n_bool > 1:
        raise IndexError("CuPy does not support indexing with more than one boolean array")
    return out, advanced, n_bool


def _wrap_out_of_bounds(parts, shape):
    """CuPy wraps out-of-bounds integer array indices (mode 'wrap'); NumPy raises. Applied where
    each part's axis is known (no Ellipsis or None before it)."""
    axis, out = 0, []
    for p in parts:
        if p is Ellipsis or p is None:
            out.extend(parts[len(out):])
            break
        if isinstance(p, np.ndarray) and p.dtype.kind in "iu" and axis < len(shape) and shape[axis] > 0:
            p = np.mod(p, shape[axis])
        out.append(p)
        axis += p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1
    return tuple(out)


def _key(idx, shape):
    parts, advanced, n_bool = _index_parts(idx)
    if n_bool:
        _sync("mask_index")  # CuPy reads the mask's count back to size the result
    return _wrap_out_of_bounds(parts, shape), advanced


# ------------------------------------------------------------------------------------------------
# The array


def _binary_op(name, reflected=False):
    def op(self, other):
        if type(other) is ndarray or isinstance(other, _SCALAR_TYPES) or isinstance(other, np.ndarray):
            u = _ufunc(name)
            return u(other, self) if reflected else u(self, other)
        return NotImplemented
    op.__name__ = f"__{'r' if reflected else ''}{name}__"
    return op


def _inplace_op(name):
    def op(self, other):
        _ufunc(name)(self, other, out=self)
        return self
    return op


def _compare(name):
    def op(self, other):
        if isinstance(other, np.ndarray) and other.ndim == 0:
            other = other.item()
        if type(other) is ndarray or isinstance(other, _SCALAR_TYPES) or isinstance(other, np.ndarray):
            return _ufunc(name)(self, other)
        return NotImplemented
    return op


_METHODS = frozenset({  # cupy.ndarray's methods (cupy/_core/core.pyx)
    "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose", "clip",
    "compress", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "fill",
    "flatten", "max", "mean", "min", "nonzero", "partition", "prod", "ptp", "put", "ravel", "repeat",
    "reshape", "round", "sort", "squeeze", "std", "sum", "swapaxes", "take", "trace", "transpose",
    "var", "view", "tobytes", "tofile",
})
_METHOD_HOST_OK = frozenset({"take", "put", "choose", "astype", "view", "reshape", "transpose"})


class ndarray:
    """A device array: a NumPy array behind CuPy's rules (see the module)."""

    __array_priority__ = 100
    __slots__ = ("_a",)

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _from(cls, a: np.ndarray) -> "ndarray":
        obj = cls.__new__(cls)
        obj._a = a
        return obj

    # -- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: self if self._a.ndim < 2 else ndarray._from(self._a.T))
    real = property(lambda self: ndarray._from(self._a.real))
    imag = property(lambda self: ndarray._from(self._a.imag))

    @property
    def device(self):
        return cuda.Device(0)

    # -- host conversion: explicit only
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None):
        _sync("get")
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError("set: dtype and shape must match")
        self._a[...] = arr

    def item(self):
        _sync("item")
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._a.item()

    def tolist(self):
        _sync("tolist")
        return self._a.tolist()

    def __float__(self):
        _sync("float")
        return float(self._a)

    def __int__(self):
        _sync("int")
        return int(self._a)

    def __complex__(self):
        _sync("complex")
        return complex(self._a)

    def __bool__(self):
        if self._a.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False",
                          DeprecationWarning, stacklevel=2)
            return False
        if self._a.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        _sync("bool")
        return bool(self._a.reshape(-1)[0])

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    __hash__ = None

    # -- NumPy protocols, as cupy.ndarray implements them
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            return NotImplemented  # np.add.at(device, ...) etc. raise TypeError
        try:
            cp_ufunc = getattr(_cupy, ufunc.__name__)
        except AttributeError:
            return NotImplemented
        if not isinstance(cp_ufunc, ufunc_):
            return NotImplemented
        inout = inputs + tuple(kwargs.get("out", ()) or ())
        for x in inout:
            if not (type(x) is ndarray or isinstance(x, _SCALAR_TYPES) or isinstance(x, np.ndarray)):
                return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
        if ufunc.__name__ in _COMPARISONS:
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
        return cp_ufunc(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        try:
            module = functools.reduce(getattr, func.__module__.split(".")[1:], _cupy)
            cupy_func = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        if cupy_func is func:
            return NotImplemented
        for t in types:
            if t not in (ndarray, np.ndarray):
                return NotImplemented
        return cupy_func(*args, **kwargs)

    # -- indexing
    def __getitem__(self, idx):
        key, _ = _key(idx, self._a.shape)
        return _wrap(self._a[key])

    def __setitem__(self, idx, value):
        key, advanced = _key(idx, self._a.shape)
        if type(value) is ndarray:
            value = value._a
        elif isinstance(value, np.ndarray):
            if not advanced and value.ndim > 0:
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")  # CuPy's fill
        elif isinstance(value, (list, tuple)):
            if not advanced:
                raise TypeError(_UNSUPPORTED.format(type(value)) + " (basic-index assignment of a list)")
            value = np.asarray(_unwrap(value, True, "__setitem__"))
        elif not isinstance(value, _SCALAR_TYPES):
            raise TypeError(_UNSUPPORTED.format(type(value)))
        if advanced and not any(isinstance(p, np.ndarray) and p.dtype == bool for p in key):
            _first_wins_assign(self._a, key, value)
        else:
            self._a[key] = value

    # -- methods
    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        method = getattr(self._a, name)
        host_ok = name in _METHOD_HOST_OK

        def call(*args, **kwargs):
            CALLS[f"ndarray.{name}"] += 1
            if name in ("sort", "argsort"):
                _stable_kind(kwargs, args[1:2])
                kwargs["kind"] = "stable"
                args = args[:1]
            if name == "dot" and (not args or type(args[0]) is not ndarray):
                raise TypeError("Argument 'b' has incorrect type (expected cupy.ndarray)")
            if name == "nonzero":
                _sync("nonzero")
            if name == "fill" and args and isinstance(args[0], np.ndarray) and args[0].ndim > 0:
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            if name == "astype" and (kwargs.get("copy") is False or len(args) > 4 and args[4] is False):
                if np.dtype(args[0] if args else kwargs["dtype"]) == self._a.dtype:
                    return self
            out = kwargs.get("out")
            a = _unwrap(args, host_ok, f"ndarray.{name}")
            k = _unwrap(kwargs, host_ok, f"ndarray.{name}")
            r = method(*a, **k)
            if out is not None:
                return out
            return None if r is None else _wrap(r)

        return call

    def copy(self, order="C"):
        CALLS["ndarray.copy"] += 1
        return ndarray._from(self._a.copy(order=order))

    def scatter_add(self, slices, value):
        _scatter(self, slices, value, "add")

    def scatter_max(self, slices, value):
        _scatter(self, slices, value, "maximum")

    def scatter_min(self, slices, value):
        _scatter(self, slices, value, "minimum")

    # -- operators
    __add__, __radd__ = _binary_op("add"), _binary_op("add", True)
    __sub__, __rsub__ = _binary_op("subtract"), _binary_op("subtract", True)
    __mul__, __rmul__ = _binary_op("multiply"), _binary_op("multiply", True)
    __truediv__, __rtruediv__ = _binary_op("true_divide"), _binary_op("true_divide", True)
    __floordiv__, __rfloordiv__ = _binary_op("floor_divide"), _binary_op("floor_divide", True)
    __mod__, __rmod__ = _binary_op("remainder"), _binary_op("remainder", True)
    __pow__, __rpow__ = _binary_op("power"), _binary_op("power", True)
    __and__, __rand__ = _binary_op("bitwise_and"), _binary_op("bitwise_and", True)
    __or__, __ror__ = _binary_op("bitwise_or"), _binary_op("bitwise_or", True)
    __xor__, __rxor__ = _binary_op("bitwise_xor"), _binary_op("bitwise_xor", True)
    __lshift__, __rlshift__ = _binary_op("left_shift"), _binary_op("left_shift", True)
    __rshift__, __rrshift__ = _binary_op("right_shift"), _binary_op("right_shift", True)
    __iadd__, __isub__, __imul__ = _inplace_op("add"), _inplace_op("subtract"), _inplace_op("multiply")
    __itruediv__, __ifloordiv__ = _inplace_op("true_divide"), _inplace_op("floor_divide")
    __imod__, __ipow__ = _inplace_op("remainder"), _inplace_op("power")
    __iand__, __ior__, __ixor__ = _inplace_op("bitwise_and"), _inplace_op("bitwise_or"), _inplace_op("bitwise_xor")
    __lt__, __le__ = _compare("less"), _compare("less_equal")
    __gt__, __ge__ = _compare("greater"), _compare("greater_equal")
    __eq__, __ne__ = _compare("equal"), _compare("not_equal")

    def __neg__(self):
        return _ufunc("negative")(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ufunc("absolute")(self)

    def __invert__(self):
        return _ufunc("invert")(self)

    def __matmul__(self, other):
        if type(other) is not ndarray and not isinstance(other, np.ndarray):
            return NotImplemented  # cupyx sparse matrices take it (__rmatmul__)
        return _cupy.matmul(self, other)

    def __rmatmul__(self, other):
        if isinstance(other, np.ndarray):
            _reject_host(other, "matmul")
        return NotImplemented


ndarray.__module__ = "cupy"  # engine.backend.array_namespace checks type(a).__module__


def _stable_kind(kwargs, positional):
    kind = kwargs.pop("kind", positional[0] if positional else None)
    if kind not in (None, "stable"):
        raise ValueError(f"kind={kind!r}: CuPy sorts stably only (kind=None or 'stable')")


def _first_wins_assign(a: np.ndarray, key: tuple, value) -> None:
    """a[key] = value with integer index arrays, where a repeated index keeps its first value.

    CuPy leaves the winner undefined (parallel stores); NumPy keeps the last. The first makes code
    that relies on NumPy's order differ from its NumPy run. Plain indices (no slices before or
    between the arrays) only; anything else is assigned the NumPy way."""
    arrays = [p for p in key if isinstance(p, np.ndarray)]
    if not all(isinstance(p, np.ndarray) for p in key):
        a[key] = value
        return
    idx = np.broadcast_arrays(*arrays)
    shape = idx[0].shape
    flat = tuple(i.reshape(-1)[::-1] for i in idx)
    rest = a.shape[len(idx):]
    v = np.broadcast_to(np.asarray(value, dtype=a.dtype), shape + rest).reshape((-1,) + rest)[::-1]
    a[flat] = v


def _scatter(target, indices, values, op):
    if type(target) is not ndarray:
        raise TypeError(_UNSUPPORTED.format(type(target)) + f" ({op}.at target)")
    if op not in _AT_DTYPES:
        raise NotImplementedError(f"`{op}.at` is not supported by CuPy")
    if not issubclass(target.dtype.type, _AT_DTYPES[op]):
        raise TypeError(f"cupy.{op}.at only supports " + ", ".join(t.__name__ for t in _AT_DTYPES[op])
                        + f" as data type, not {target.dtype}")
    key, _ = _key(indices, target.shape)
    v = values._a if type(values) is ndarray else np.asarray(_unwrap(values, True, f"{op}.at"))
    getattr(np, op).at(target._a, key, v)


# ------------------------------------------------------------------------------------------------
# Ufuncs


class ufunc_:
    """A CuPy ufunc: NumPy's behind CuPy's argument rules, with CuPy's methods."""

    def __init__(self, npu: np.ufunc):
        self._u = npu
        self.__name__ = npu.__name__
        self.nin, self.nout, self.nargs = npu.nin, npu.nout, npu.nargs

    def __repr__(self):
        return f"<ufunc 'cupy_{self.__name__}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        CALLS[self.__name__] += 1
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        a = []
        for x in args:
            if type(x) is ndarray:
                a.append(x._a)
            elif isinstance(x, _SCALAR_TYPES):
                a.append(x)
            else:
                raise TypeError(_UNSUPPORTED.format(type(x)))
        k = {"dtype": dtype, "casting": casting}
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if type(o) is not ndarray:
                    raise TypeError("Output arguments must be cupy.ndarray")
            k["out"] = tuple(o._a for o in outs) if isinstance(out, tuple) else out._a
        r = self._u(*a, **k)
        if out is not None:
            return out
        return _wrap(r)

    def at(self, a, indices, b=None):
        CALLS[f"{self.__name__}.at"] += 1
        _scatter(a, indices, b, self.__name__)

    def reduce(self, a, axis=0, dtype=None, out=None, keepdims=False):
        if self.__name__ not in _REDUCE_OK:
            raise NotImplementedError(f"{self.__name__}.reduce is not supported by CuPy")
        if type(a) is not ndarray:
            raise TypeError(_UNSUPPORTED.format(type(a)))
        return _wrap(self._u.reduce(a._a, axis=axis, dtype=dtype, keepdims=keepdims))

    def accumulate(self, a, axis=0, dtype=None, out=None):
        if self.__name__ not in _ACCUMULATE_OK:
            raise NotImplementedError(f"{self.__name__}.accumulate is not supported by CuPy")
        if type(a) is not ndarray:
            raise TypeError(_UNSUPPORTED.format(type(a)))
        return _wrap(self._u.accumulate(a._a, axis=axis, dtype=dtype))

    def reduceat(self, a, indices, axis=0, dtype=None, out=None):
        if self.__name__ != "add":
            raise NotImplementedError(f"{self.__name__}.reduceat is not supported by CuPy")
        if type(a) is not ndarray:
            raise TypeError(_UNSUPPORTED.format(type(a)))
        return _wrap(self._u.reduceat(a._a, _unwrap(indices, True, "reduceat"), axis=axis, dtype=dtype))

    def outer(self, A, B, **kwargs):
        for x in (A, B):
            if not (type(x) is ndarray or isinstance(x, _SCALAR_TYPES)):
                raise TypeError(_UNSUPPORTED.format(type(x)))
        return _wrap(self._u.outer(_unwrap(A, False, "outer"), _unwrap(B, False, "outer")))


@functools.lru_cache(maxsize=None)
def _ufunc(name: str) -> ufunc_:
    return ufunc_(getattr(np, name))


# ------------------------------------------------------------------------------------------------
# Module functions


def _function(npfunc, name: str, qualname: str):
    host_ok = name in _HOST_INPUT_OK

    def call(*args, **kwargs):
        CALLS[qualname] += 1
        if name in ("sort", "argsort"):
            _stable_kind(kwargs, args[2:3])
            args = args[:2]
            kwargs["kind"] = "stable"
        if name in ("nonzero", "flatnonzero", "argwhere", "unique", "count_nonzero") or name == "repeat" and (
                len(args) > 1 and type(args[1]) is ndarray):
            _sync(name)
        if name == "bincount":
            STATS["sync"] += 2  # CuPy checks min < 0 and reads max on the host
            STATS["bincount"] += 1
        a = _unwrap(args, host_ok, f"cupy.{qualname}")
        k = _unwrap(kwargs, host_ok, f"cupy.{qualname}")
        if name in ("asarray", "asanyarray") and args and type(args[0]) is ndarray:
            dtype = kwargs.get("dtype", args[1] if len(args) > 1 else None)
            if dtype is None or np.dtype(dtype) == args[0].dtype:
                return args[0]  # no copy, the same object (as CuPy)
        if name in ("asarray", "array", "asanyarray", "ascontiguousarray") and a and isinstance(a[0], np.ndarray) \
                and type(args[0]) is not ndarray:
            return _wrap(np.array(*a, **k))  # a host->device copy never aliases the host array
        return _wrap(npfunc(*a, **k))

    call.__name__ = name
    call.__qualname__ = qualname
    call.__module__ = "cupy"
    return call


def _asnumpy(a, stream=None, order="C", out=None):
    CALLS["asnumpy"] += 1
    if type(a) is ndarray:
        return a.get(stream=stream, order=order, out=out)
    if isinstance(a, _SparseMatrix):
        raise TypeError("asnumpy of a sparse matrix: use .get()")
    return np.asarray(a, order=order)


def _get_array_module(*args):
    for a in args:
        if type(a) is ndarray or isinstance(a, _SparseMatrix):
            return _cupy
    return np


class _Namespace(types.ModuleType):
    """A module that resolves NumPy names lazily, wrapped by CuPy's rules."""

    def __init__(self, name: str, source, prefix: str = ""):
        super().__init__(name)
        self._source = source
        self._prefix = prefix

    def __getattr__(self, name: str):
        if name.startswith("__") or name in MISSING:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'")
        try:
            obj = getattr(self._source, name)
        except AttributeError:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'") from None
        if isinstance(obj, np.ufunc):
            value = _ufunc(name)
        elif isinstance(obj, (type, int, float, str, np.dtype, np.generic)) or obj is None:
            value = obj  # dtypes, constants, exception classes: CuPy's are NumPy's
        elif isinstance(obj, types.ModuleType):
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' (not emulated)")
        elif callable(obj):
            value = _function(obj, name, self._prefix + name)
        else:
            value = obj  # r_, c_, s_, newaxis, ...: index helpers
        setattr(self, name, value)
        return value


_cupy = _Namespace("cupy", np)
_cupy.ndarray = ndarray
_cupy.ufunc = ufunc_
_cupy.asnumpy = _asnumpy
_cupy.get_array_module = _get_array_module
_cupy.__version__ = "14.0.0+cpu-emulation"
_cupy.__file__ = __file__
_cupy.linalg = _Namespace("cupy.linalg", np.linalg, "linalg.")
_cupy.random = _Namespace("cupy.random", np.random, "random.")
_cupy.fft = _Namespace("cupy.fft", np.fft, "fft.")


class _Device:
    def __init__(self, device=0):
        self.id = int(device)
        self.compute_capability = "90"

    def synchronize(self):
        STATS["device_synchronize"] += 1

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return self.id


class _Stream:
    null = None

    def synchronize(self):
        STATS["device_synchronize"] += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


cuda = types.ModuleType("cupy.cuda")
cuda.Device = _Device
cuda.Stream = _Stream
cuda.get_current_stream = lambda: _Stream()
cuda.runtime = types.ModuleType("cupy.cuda.runtime")
cuda.runtime.getDeviceCount = lambda: 1
cuda.runtime.getDevice = lambda: 0
cuda.runtime.runtimeGetVersion = lambda: 13000
cuda.runtime.driverGetVersion = lambda: 13000
cuda.runtime.getDeviceProperties = lambda device: {
    "name": b"CuPy semantics on the CPU (tests.engine.cupy_semantics)", "totalGlobalMem": 2**34,
    "major": 9, "minor": 0, "multiProcessorCount": 1}
cuda.runtime.deviceSynchronize = lambda: _Device().synchronize()
cuda.is_available = lambda: True
_cupy.cuda = cuda
_cupy.cuda.Device = _Device


# ------------------------------------------------------------------------------------------------
# cupyx


class _SparseMatrix:
    """A cupyx.scipy.sparse matrix: SciPy's behind CuPy's rules (dense operands must be on the
    device)."""

    __array_priority__ = 101
    format = "csr"

    def __init__(self, arg1, shape=None, dtype=None, copy=False):
        if isinstance(arg1, _SparseMatrix):
            m = arg1._m.copy() if copy else arg1._m
        elif scipy.sparse.issparse(arg1):
            m = arg1  # cupyx copies a SciPy matrix to the device
        elif type(arg1) is ndarray:
            m = arg1._a
        elif isinstance(arg1, tuple):
            m = (_unwrap(arg1[0], False, "sparse data"),) + tuple(_unwrap(arg1[1:], False, "sparse indices"))
            if len(m) == 2 and isinstance(m[1], tuple):
                m = (m[0], tuple(m[1]))
        elif isinstance(arg1, np.ndarray):
            raise ValueError("Unsupported initializer format (a NumPy array: use cupy.asarray first)")
        else:
            raise ValueError("Unsupported initializer format")
        self._m = getattr(scipy.sparse, f"{self.format}_matrix")(m, shape=shape, dtype=dtype, copy=copy)

    @classmethod
    def _of(cls, m):
        obj = cls.__new__(cls)
        obj._m = m
        return obj

    shape = property(lambda self: self._m.shape)
    dtype = property(lambda self: self._m.dtype)
    nnz = property(lambda self: self._m.nnz)
    ndim = 2

    def get(self, stream=None):
        _sync("get")
        return self._m.copy()

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed")

    def _result(self, r):
        if scipy.sparse.issparse(r):
            return _SPARSE_TYPES.get(r.format, csr_matrix)._of(r)
        return _wrap(r)

    def __matmul__(self, other):
        CALLS["sparse.__matmul__"] += 1
        if type(other) is ndarray:
            return _wrap(self._m @ other._a)
        if isinstance(other, _SparseMatrix):
            return self._result(self._m @ other._m)
        if isinstance(other, np.ndarray):
            _reject_host(other, "sparse @ dense")
        return NotImplemented

    def __rmatmul__(self, other):
        if type(other) is ndarray:
            return _wrap(other._a @ self._m)
        if isinstance(other, np.ndarray):
            _reject_host(other, "dense @ sparse")
        return NotImplemented

    def dot(self, other):
        return self @ other

    def __mul__(self, other):
        if isinstance(other, _SCALAR_TYPES):
            return self._result(self._m * other)
        return self @ other

    def __rmul__(self, other):
        if isinstance(other, _SCALAR_TYPES):
            return self._result(other * self._m)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, _SparseMatrix):
            return self._result(self._m + other._m)
        if type(other) is ndarray:
            return _wrap(self._m + other._a)
        if isinstance(other, np.ndarray) or scipy.sparse.issparse(other):
            _reject_host(other, "sparse +")
        return NotImplemented

    __radd__ = __add__

    def __neg__(self):
        return self._result(-self._m)

    @property
    def T(self):
        return self._result(self._m.T)

    def transpose(self, axes=None, copy=False):
        return self.T

    def tocsr(self, copy=False):
        return csr_matrix._of(self._m.tocsr(copy=copy))

    def tocsc(self, copy=False):
        return csc_matrix._of(self._m.tocsc(copy=copy))

    def tocoo(self, copy=False):
        return coo_matrix._of(self._m.tocoo(copy=copy))

    def toarray(self, order=None, out=None):
        return ndarray._from(self._m.toarray(order=order))

    def diagonal(self, k=0):
        return ndarray._from(self._m.diagonal(k))

    def sum(self, axis=None, dtype=None, out=None):
        return _wrap(np.asarray(self._m.sum(axis=axis, dtype=dtype)))

    def copy(self):
        return self._result(self._m.copy())

    def __repr__(self):
        return f"<emulated cupyx {self.format}_matrix {self.shape}, nnz={self.nnz}>"


class csr_matrix(_SparseMatrix):
    format = "csr"


class csc_matrix(_SparseMatrix):
    format = "csc"


class coo_matrix(_SparseMatrix):
    format = "coo"


_SPARSE_TYPES = {"csr": csr_matrix, "csc": csc_matrix, "coo": coo_matrix}
for _cls in (_SparseMatrix, csr_matrix, csc_matrix, coo_matrix):
    _cls.__module__ = "cupyx.scipy.sparse"


def _sparse_diags(diagonals, offsets=0, shape=None, format=None, dtype=None):
    m = scipy.sparse.diags(_unwrap(diagonals, False, "cupyx.scipy.sparse.diags"), offsets, shape=shape,
                           format=format or "csr", dtype=dtype)
    return _SPARSE_TYPES.get(m.format, csr_matrix)._of(m.asformat(m.format if m.format in _SPARSE_TYPES else "csr"))


def _distance_transform_edt(input, sampling=None, return_distances=True, return_indices=False,
                            distances=None, indices=None, *, block_params=None, float64_distances=True):
    CALLS["cupyx.scipy.ndimage.distance_transform_edt"] += 1
    if type(input) is not ndarray:
        raise TypeError(_UNSUPPORTED.format(type(input)) + " (distance_transform_edt takes a cupy.ndarray)")
    if input.ndim not in (2, 3):
        raise NotImplementedError("cupyx distance_transform_edt supports 2-D and 3-D input only")
    if distances is not None or indices is not None:
        raise NotImplementedError("distances=/indices= outputs are not emulated")
    r = scipy.ndimage.distance_transform_edt(input._a, sampling=sampling, return_distances=return_distances,
                                             return_indices=return_indices)
    if return_indices:
        r = (r[0], r[1].astype(np.int32)) if return_distances else r.astype(np.int32)
    return _wrap(r)


def _cupyx_scatter(op):
    def scatter(a, slices, value):
        CALLS[f"cupyx.scatter_{op}"] += 1
        _scatter(a, slices, value, {"add": "add", "max": "maximum", "min": "minimum"}[op])
    return scatter


cupyx = types.ModuleType("cupyx")
cupyx.scatter_add = _cupyx_scatter("add")
cupyx.scatter_max = _cupyx_scatter("max")
cupyx.scatter_min = _cupyx_scatter("min")
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.ndimage = types.ModuleType("cupyx.scipy.ndimage")
cupyx.scipy.ndimage.distance_transform_edt = _distance_transform_edt
cupyx.scipy.sparse = types.ModuleType("cupyx.scipy.sparse")
cupyx.scipy.sparse.spmatrix = _SparseMatrix
cupyx.scipy.sparse.csr_matrix = csr_matrix
cupyx.scipy.sparse.csc_matrix = csc_matrix
cupyx.scipy.sparse.coo_matrix = coo_matrix
cupyx.scipy.sparse.diags = _sparse_diags
cupyx.scipy.sparse.issparse = lambda x: isinstance(x, _SparseMatrix)
cupyx.scipy.sparse.isspmatrix = cupyx.scipy.sparse.issparse

MODULES = {
    "cupy": _cupy,
    "cupy.linalg": _cupy.linalg,
    "cupy.random": _cupy.random,
    "cupy.fft": _cupy.fft,
    "cupy.cuda": cuda,
    "cupy.cuda.runtime": cuda.runtime,
    "cupyx": cupyx,
    "cupyx.scipy": cupyx.scipy,
    "cupyx.scipy.ndimage": cupyx.scipy.ndimage,
    "cupyx.scipy.sparse": cupyx.scipy.sparse,
}

cupy = _cupy  # `from tests.engine.cupy_semantics import cupy`


@contextlib.contextmanager
def installed():
    """The emulator as `cupy`/`cupyx` in sys.modules, with engine.backend's GPU probe cleared on
    entry and exit; sys.modules is restored exactly (names that were absent are removed)."""
    from engine import backend

    saved = {name: sys.modules.get(name) for name in MODULES}
    backend._cupy_or_none.cache_clear()
    try:
        sys.modules.update(MODULES)
        yield _cupy
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        backend._cupy_or_none.cache_clear()
