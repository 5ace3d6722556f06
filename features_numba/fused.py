"""``fma(a, b, c)``: ``a * b + c`` rounded once (LLVM's fused multiply-add).

The smoothing recurrences (EMA, Wilder's averages) are chains where each bar waits for the
previous result; a multiply then an add is two roundings and twice the latency of one fused
operation. Python 3.11's ``math`` has no ``fma``, and letting the compiler contract on its own
(``fastmath``) would let the batch kernels and the streaming steps round differently; this
explicit one makes both compute the very same bits.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (float64)."""
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        double = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(double, [double] * 3),
                                            "llvm.fma.f64")
        return builder.call(fn, args)

    return signature, codegen
