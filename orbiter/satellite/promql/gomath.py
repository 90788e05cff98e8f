"""Go's math package (Go 1.19, linux/amd64) re-implemented in Python floats.

Why: Prometheus evaluates PromQL's math functions and the ``^`` operator with
Go's ``math`` package, whose algorithms are not the C library's, so results
differ in the last bits for ordinary inputs (``log10(0.1)``, ``tan(1)``,
``1.7 ^ 100.25``...). To give results identical to Prometheus 2.42 bit for
bit, each function below performs the same float64 operations, in the same
order and with the same constants, as the code promtool 2.42 (built with
go1.19.8) runs on amd64. This is an independent Python rendering of those
algorithms; which Go file each follows:

- ``exp``: ``exp_amd64.s`` (assembly; Shibata's method). It has two paths and
  Go takes the fused multiply-add one when the CPU has AVX and FMA (x86-64
  CPUs from about 2013 on, and the machine promtool was checked on); that path is the
  one rendered here, with an exactly rounded software ``_fma``. On a CPU
  without FMA, Prometheus's exp (so sinh, cosh, tanh and ^) can differ from
  this in the last bit.
- ``log``: ``log_amd64.s`` (assembly; FreeBSD's algorithm, frexp done on the
  bits, so subnormal inputs are not normalised).
- ``log2``, ``log10``: ``log10.go``; ``log1p``: ``log1p.go``.
- ``sin``, ``cos``: ``sin.go``; ``tan``: ``tan.go`` (Cephes), both with the
  Payne-Hanek reduction of ``trig_reduce.go`` for arguments >= 2**29.
- ``asin``, ``acos``: ``asin.go``; ``atan``: ``atan.go``; ``atan2``: ``atan2.go``.
- ``sinh``, ``cosh``: ``sinh.go``; ``tanh``: ``tanh.go``; ``asinh``:
  ``asinh.go``; ``acosh``: ``acosh.go``; ``atanh``: ``atanh.go``.
- ``pow``: ``pow.go`` (with Go's ``Modf``, ``Frexp`` and ``Ldexp`` semantics).

Square roots are correctly rounded both in Go (SQRTSD) and in Python, so
``math.sqrt`` is used for them. Go never raises: domain errors give NaN,
overflow gives an infinity, division by zero an infinity; so do these.
Expected values in tests/unit/test_gomath.py and the rules corpus files
62_go_math_* are promtool's own results.
"""

from __future__ import annotations

import math
import struct

NAN = math.nan
INF = math.inf

_PACK_D = struct.Struct("<d").pack
_UNPACK_D = struct.Struct("<d").unpack
_PACK_Q = struct.Struct("<Q").pack
_UNPACK_Q = struct.Struct("<Q").unpack

_MASK64 = (1 << 64) - 1
_MANT_MASK = (1 << 52) - 1
_SIGN = 1 << 63

# Go's untyped constants are exact and rounded once to float64; these are
# those roundings (some differ from the same expression evaluated in floats).
_PI = 3.141592653589793
_PI_2 = 1.5707963267948966
_PI_4 = 0.7853981633974483
_3PI_4 = float.fromhex("0x1.2d97c7f3321d2p+1")  # 3*Pi/4
_4_PI = float.fromhex("0x1.45f306dc9c883p+0")  # 4/Pi
_1_LN2 = float.fromhex("0x1.71547652b82fep+0")  # 1/Ln2
_1_LN10 = float.fromhex("0x1.bcb7b1526e50ep-2")  # 1/Ln10
_LN2 = 6.93147180559945286227e-01


def _bits(x: float) -> int:
    return _UNPACK_Q(_PACK_D(x))[0]


def _from_bits(b: int) -> float:
    return _UNPACK_D(_PACK_Q(b))[0]


def _sqrt(x: float) -> float:
    """SQRTSD: correctly rounded, NaN below zero instead of raising."""
    return math.sqrt(x) if x >= 0.0 or x != x else NAN


def _div(x: float, y: float) -> float:
    """IEEE division, as Go does it: x/0 is ±Inf or NaN, never an exception."""
    if y == 0.0:
        if x == 0.0 or x != x:
            return NAN
        return INF if (x < 0) == (math.copysign(1.0, y) < 0) else -INF
    return x / y


# --- fused multiply-add -------------------------------------------------------

_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's splitting constant


def _split(a: float) -> tuple[float, float]:
    """a as hi + lo with 26-bit halves, so products of halves are exact (Veltkamp)."""
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _add_product(c: float, p: float, pe: float) -> float:
    """c + (p + pe) rounded once, where p + pe is an exact product and p = RN(p + pe).

    Boldo and Melquiond's emulation of fma: th + tl = c + p exactly (TwoSum),
    tl + pe rounded to odd, then th + that rounded to nearest is the
    correctly rounded c + p + pe.
    """
    th = c + p
    bv = th - c
    tl = (c - (th - bv)) + (p - bv)
    v = tl + pe
    bv = v - tl
    err = (tl - (v - bv)) + (pe - bv)
    if err and not (v / math.ulp(v)) % 2.0:  # v inexact and even: step to the odd neighbour
        v = math.nextafter(v, INF if err > 0 else -INF)
    return th + v


def _fma(a: float, b: float, c: float) -> float:
    """a*b + c rounded once, like VFMADD (Python 3.11 has no math.fma).

    The product's error comes from Dekker's algorithm; exact as long as no
    partial product overflows or underflows, true for every use in exp().
    """
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return _add_product(c, p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)


# --- exp and log (the amd64 assembly versions) ---------------------------------

_EXP_OVERFLOW = 7.09782712893384e02
_LOG2E = 1.4426950408889634073599246810018920
_LN2U = 0.69314718055966295651160180568695068359375
_LN2L = 0.28235290563031577122588448175013436025525412068e-12
_LN2L_HI, _LN2L_LO = _split(_LN2L)
_EXP_TAYLOR = (  # 1/8! down to 1/2!, then 1
    2.4801587301587301587e-5,
    1.9841269841269841270e-4,
    1.3888888888888888889e-3,
    8.3333333333333333333e-3,
    4.1666666666666666667e-2,
    1.6666666666666666667e-1,
    0.5,
    1.0,
)
_TWO_POW_M1022 = 2.2250738585072014e-308


def exp(x: float) -> float:
    """Go's Exp on amd64 (FMA path): e**(x/16) by Taylor, squared 4 times."""
    if x != x or x == INF:
        return x
    if x == -INF:
        return 0.0
    if x > _EXP_OVERFLOW:
        return INF
    scaled = _LOG2E * x
    # CVTSD2SL: round half to even, out of range gives the "indefinite" -2**31
    k = round(scaled) if -2147483648.0 <= scaled < 2147483648.0 else -2147483648
    biased = k + 1023
    if biased < -52:
        return 0.0
    fk = float(k)
    r = x - fk * _LN2U  # fused in Go, but k*LN2U is exact (41-bit constant, |k| < 2**11)
    p = fk * _LN2L  # k fits in 26 bits, so Dekker's product error needs LN2L split only
    r = _add_product(r, -p, -((fk * _LN2L_HI - p) + fk * _LN2L_LO)) * 0.0625
    rh, rl = _split(r)
    acc = _EXP_TAYLOR[0]
    for coeff in _EXP_TAYLOR[1:]:
        # acc = fma(acc, r, coeff): _fma inlined (the hot loop), r split once, and as
        # |acc*r| < |coeff| here (|r| < 0.022) the first sum's error needs Fast2Sum only
        p = acc * r
        t = _SPLITTER * acc
        ah = t - (t - acc)
        al = acc - ah
        pe = ((ah * rh - p) + ah * rl + al * rh) + al * rl
        th = coeff + p
        tl = p - (th - coeff)
        v = tl + pe
        bv = v - tl
        err = (tl - (v - bv)) + (pe - bv)
        if err and not (v / math.ulp(v)) % 2.0:
            v = math.nextafter(v, INF if err > 0 else -INF)
        acc = th + v
    r = r * acc
    for _ in range(3):
        r = r * (r + 2.0)
    r = _fma(r + 2.0, r, 1.0)
    if biased <= 0:  # subnormal result: scale by 2**(k+1022), then by 2**-1022
        return r * _from_bits((biased + 0x3FE) << 52) * _TWO_POW_M1022
    if biased >= 0x7FF:
        return INF
    return r * _from_bits(biased << 52)


_LOG_HSQRT2 = 7.07106781186547524401e-01
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_L1 = 6.666666666666735130e-01  # log and log1p share these
_L2 = 3.999999999940941908e-01
_L3 = 2.857142874366239149e-01
_L4 = 2.222219843214978396e-01
_L5 = 1.818357216161805012e-01
_L6 = 1.531383769920937332e-01
_L7 = 1.479819860511658591e-01


def log(x: float) -> float:
    """Go's Log on amd64: frexp taken from the bits (subnormals not normalised)."""
    b = _bits(x)
    if not b & ~_SIGN:
        return -INF
    if b & _SIGN:
        return NAN
    if b >= 0x7FF0000000000000:
        return x
    f1 = _from_bits((b & _MANT_MASK) | 0x3FE0000000000000)
    k = float((b >> 52) - 0x3FE)
    if not f1 > _LOG_HSQRT2:  # the assembly's CMPSD tests <= (log.go has <)
        k -= 1.0
        f1 *= 2.0
    f = f1 - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (((_L7 * s4 + _L5) * s4 + _L3) * s4 + _L1)
    t2 = s4 * ((_L6 * s4 + _L4) * s4 + _L2)
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * ((t1 + t2) + hfsq) + k * _LN2_LO)) - f)


def ldexp(frac: float, exp_: int) -> float:
    """Go's Ldexp: correctly rounded, overflow gives ±Inf instead of raising."""
    try:
        return math.ldexp(frac, exp_)
    except OverflowError:
        return math.copysign(INF, frac)


def log2(x: float) -> float:
    """Go's Log2: Log of the frexp fraction, exact for powers of two."""
    frac, e = math.frexp(x)
    if frac == 0.5:
        return float(e - 1)
    return log(frac) * _1_LN2 + float(e)


def log10(x: float) -> float:
    """Go's Log10: Log scaled by 1/Ln10 (hence log10(0.1) != -1)."""
    return log(x) * _1_LN10


_SQRT2_M1 = 4.142135623730950488017e-01
_SQRT2_HALF_M1 = -2.928932188134524755992e-01
def log1p(x: float) -> float:
    """Go's Log1p (FreeBSD's s_log1p.c); used by Asinh, Acosh and Atanh."""
    if x < -1.0 or x != x:
        return NAN
    if x == -1.0:
        return -INF
    if x == INF:
        return INF
    absx = abs(x)
    k = 1
    f = 0.0
    iu = 0
    c = 0.0
    if absx < _SQRT2_M1:
        if absx < 1.862645149230957e-09:  # 2**-29
            if absx < 5.551115123125783e-17:  # 2**-54
                return x
            return x - x * x * 0.5
        if x > _SQRT2_HALF_M1:
            k = 0
            f = x
            iu = 1
    if k != 0:
        if absx < 9007199254740992.0:  # 2**53
            u = 1.0 + x
            iu = _bits(u)
            k = (iu >> 52) - 1023
            c = 1.0 - (u - x) if k > 0 else x - (u - 1.0)
            c /= u
        else:
            u = x
            iu = _bits(u)
            k = (iu >> 52) - 1023
        iu &= _MANT_MASK
        if iu < 0x0006A09E667F3BCD:
            u = _from_bits(iu | 0x3FF0000000000000)
        else:
            k += 1
            u = _from_bits(iu | 0x3FE0000000000000)
            iu = (0x0010000000000000 - iu) >> 2
        f = u - 1.0
    hfsq = 0.5 * f * f
    fk = float(k)
    if iu == 0:
        if f == 0.0:
            if k == 0:
                return 0.0
            c += fk * _LN2_LO
            return fk * _LN2_HI + c
        r = hfsq * (1.0 - 0.66666666666666666 * f)
        if k == 0:
            return f - r
        return fk * _LN2_HI - ((r - (fk * _LN2_LO + c)) - f)
    s = f / (2.0 + f)
    z = s * s
    r = z * (_L1 + z * (_L2 + z * (_L3 + z * (_L4 + z * (_L5 + z * (_L6 + z * _L7))))))
    if k == 0:
        return f - (hfsq - s * (hfsq + r))
    return fk * _LN2_HI - ((hfsq - (s * (hfsq + r) + (fk * _LN2_LO + c))) - f)


# --- sin, cos, tan --------------------------------------------------------------

_PI4A = 7.85398125648498535156e-1
_PI4B = 3.77489470793079817668e-8
_PI4C = 2.69515142907905952645e-15
_REDUCE_THRESHOLD = float(1 << 29)
_SIN = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
        -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
_COS = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
        2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)
# binary digits of 4/pi, 64 bits a digit: 4/pi = sum(_M_4_PI[i] * 2**(-64*i))
_M_4_PI = (
    0x0000000000000001, 0x45F306DC9C882A53, 0xF84EAFA3EA69BB81, 0xB6C52B3278872083,
    0xFCA2C757BD778AC3, 0x6E48DC74849BA5C0, 0x0C925DD413A32439, 0xFC3BD63962534E7D,
    0xD1046BEA5D768909, 0xD338E04D68BEFC82, 0x7323AC7306A673E9, 0x3908BF177BF25076,
    0x3FF12FFFBC0B301F, 0xDE5E2316B414DA3E, 0xDA6CFD9E4F96136E, 0x9E8C7ECD3CBFD45A,
    0xEA4F758FD7CBE2F6, 0x7A0E73EF14A525D4, 0xD7F6BF623F1ABA10, 0xAC06608DF8F6D757,
)


def _digits(i: int, shift: int) -> int:
    """64 bits of 4/pi starting `shift` bits into digit i (Go's shifts past 63 give 0)."""
    return ((_M_4_PI[i] << shift) & _MASK64) | (_M_4_PI[i + 1] >> (64 - shift))


def _trig_reduce(x: float) -> tuple[int, float]:
    """Payne-Hanek reduction of x >= 2**29: (octant j, remainder in radians).

    Same 64-bit integer steps as Go's trigReduce, so the same rounding.
    """
    if x < _PI_4:
        return 0, x
    ix = _bits(x)
    e = ((ix >> 52) & 0x7FF) - 1023 - 52
    ix = (ix & _MANT_MASK) | (1 << 52)
    digit, shift = divmod(e + 61, 64)
    z0, z1, z2 = _digits(digit, shift), _digits(digit + 1, shift), _digits(digit + 2, shift)
    z1hi, z1lo = divmod(z1 * ix, 1 << 64)
    lo = z1lo + ((z2 * ix) >> 64)
    hi = ((z0 * ix) + z1hi + (lo >> 64)) & _MASK64
    lo &= _MASK64
    j = hi >> 61
    hi = ((hi << 3) & _MASK64) | (lo >> 61)
    n = 65 - hi.bit_length()  # leading zeros + 1
    frac = ((hi << n) & _MASK64) | (lo >> (64 - n) if n <= 64 else 0)
    frac = (frac >> 12) | (((1023 - n) & _MASK64) << 52)
    z = _from_bits(frac & _MASK64)
    if j & 1:
        j = (j + 1) & 7
        z -= 1.0
    return j, z * _PI_4


def _reduce(x: float) -> tuple[int, float]:
    """Octant (odd ones mapped up) and remainder of x >= 0, as Go's sin/cos/tan."""
    if x >= _REDUCE_THRESHOLD:
        return _trig_reduce(x)
    j = int(x * _4_PI)
    y = float(j)
    if j & 1:
        j += 1
        y += 1.0
    return j & 7, ((x - y * _PI4A) - y * _PI4B) - y * _PI4C


def _sin_poly(z: float, zz: float) -> float:
    s0, s1, s2, s3, s4, s5 = _SIN
    poly = (((((s0 * zz) + s1) * zz + s2) * zz + s3) * zz + s4) * zz + s5
    return z + z * zz * poly


def _cos_poly(zz: float) -> float:
    c0, c1, c2, c3, c4, c5 = _COS
    poly = (((((c0 * zz) + c1) * zz + c2) * zz + c3) * zz + c4) * zz + c5
    return 1.0 - 0.5 * zz + zz * zz * poly


def sin(x: float) -> float:
    """Go's Sin (Cephes sin.c)."""
    if x == 0.0 or x != x:
        return x
    if x in (INF, -INF):
        return NAN
    sign = x < 0
    j, z = _reduce(-x if sign else x)
    if j > 3:
        sign = not sign
        j -= 4
    zz = z * z
    y = _cos_poly(zz) if j in (1, 2) else _sin_poly(z, zz)
    return -y if sign else y


def cos(x: float) -> float:
    """Go's Cos (Cephes sin.c)."""
    if x != x or x in (INF, -INF):
        return NAN
    j, z = _reduce(abs(x))
    sign = False
    if j > 3:
        j -= 4
        sign = True
    if j > 1:
        sign = not sign
    zz = z * z
    y = _sin_poly(z, zz) if j in (1, 2) else _cos_poly(zz)
    return -y if sign else y


_TAN_P = (-1.30936939181383777646e4, 1.15351664838587416140e6, -1.79565251976484877988e7)
_TAN_Q = (1.36812963470692954678e4, -1.32089234440210967447e6, 2.50083801823357915839e7,
          -5.38695755929454629881e7)


def tan(x: float) -> float:
    """Go's Tan (Cephes tan.c)."""
    if x == 0.0 or x != x:
        return x
    if x in (INF, -INF):
        return NAN
    sign = x < 0
    j, z = _reduce(-x if sign else x)
    zz = z * z
    if zz > 1e-14:
        p0, p1, p2 = _TAN_P
        q1, q2, q3, q4 = _TAN_Q
        num = zz * (((p0 * zz) + p1) * zz + p2)
        y = z + z * (num / ((((zz + q1) * zz + q2) * zz + q3) * zz + q4))
    else:
        y = z
    if j & 2:
        y = _div(-1.0, y)
    return -y if sign else y


# --- inverse trigonometric ------------------------------------------------------

_XATAN_P = (-8.750608600031904122785e-01, -1.615753718733365076637e01,
            -7.500855792314704667340e01, -1.228866684490136173410e02,
            -6.485021904942025371773e01)
_XATAN_Q = (2.485846490142306297962e01, 1.650270098316988542046e02,
            4.328810604912902668951e02, 4.853903996359136964868e02,
            1.945506571482613964425e02)
_MOREBITS = 6.123233995736765886130e-17  # pi/2 - float64(pi/2)
_TAN3PIO8 = 2.41421356237309504880


def _xatan(x: float) -> float:
    """Cephes' atan series on [0, 0.66]."""
    p0, p1, p2, p3, p4 = _XATAN_P
    q0, q1, q2, q3, q4 = _XATAN_Q
    z = x * x
    num = z * ((((p0 * z + p1) * z + p2) * z + p3) * z + p4)
    z = num / (((((z + q0) * z + q1) * z + q2) * z + q3) * z + q4)
    return x * z + x


def _satan(x: float) -> float:
    """Atan of x >= 0, reduced to [0, 0.66]."""
    if x <= 0.66:
        return _xatan(x)
    if x > _TAN3PIO8:
        return _PI_2 - _xatan(1.0 / x) + _MOREBITS
    return _PI_4 + _xatan((x - 1.0) / (x + 1.0)) + 0.5 * _MOREBITS


def atan(x: float) -> float:
    """Go's Atan (Cephes atan.c)."""
    if x == 0.0:
        return x
    return _satan(x) if x > 0 else -_satan(-x)


def asin(x: float) -> float:
    """Go's Asin: through atan of x/sqrt(1-x*x)."""
    if x == 0.0:
        return x
    sign = x < 0
    if sign:
        x = -x
    if x > 1.0:
        return NAN
    temp = _sqrt(1.0 - x * x)
    temp = _PI_2 - _satan(temp / x) if x > 0.7 else _satan(_div(x, temp))
    return -temp if sign else temp


def acos(x: float) -> float:
    """Go's Acos: Pi/2 - Asin(x)."""
    return _PI_2 - asin(x)


def atan2(y: float, x: float) -> float:
    """Go's Atan2 with its special cases; the quadrant fixed up after Atan(y/x)."""
    if y != y or x != x:
        return NAN
    if y == 0.0:
        if x >= 0 and math.copysign(1.0, x) > 0:
            return math.copysign(0.0, y)
        return math.copysign(_PI, y)
    if x == 0.0:
        return math.copysign(_PI_2, y)
    if x in (INF, -INF):
        if x == INF:
            return math.copysign(_PI_4 if y in (INF, -INF) else 0.0, y)
        return math.copysign(_3PI_4 if y in (INF, -INF) else _PI, y)
    if y in (INF, -INF):
        return math.copysign(_PI_2, y)
    q = atan(y / x)
    if x < 0:
        return q + _PI if q <= 0 else q - _PI
    return q


# --- hyperbolic ---------------------------------------------------------------------


_SINH_P = (-0.6307673640497716991184787251e6, -0.8991272022039509355398013511e5,
           -0.2894211355989563807284660366e4, -0.2630563213397497062819489e2)
_SINH_Q = (-0.6307673640497716991212077277e6, 0.1521517378790019070696485176e5,
           -0.173678953558233699533450911e3)


def sinh(x: float) -> float:
    """Go's Sinh: Hart & Cheney's rational function up to 0.5, else from Exp."""
    sign = x < 0
    if sign:
        x = -x
    if x > 21:
        temp = exp(x) * 0.5
    elif x > 0.5:
        ex = exp(x)
        temp = (ex - 1 / ex) * 0.5
    else:
        p0, p1, p2, p3 = _SINH_P
        q0, q1, q2 = _SINH_Q
        sq = x * x
        temp = (((p3 * sq + p2) * sq + p1) * sq + p0) * x
        temp = temp / (((sq + q2) * sq + q1) * sq + q0)
    return -temp if sign else temp


def cosh(x: float) -> float:
    """Go's Cosh: from one Exp and its reciprocal."""
    x = abs(x)
    if x > 21:
        return exp(x) * 0.5
    ex = exp(x)
    return (ex + 1 / ex) * 0.5


_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


def tanh(x: float) -> float:
    """Go's Tanh (Cephes tanh.c)."""
    z = abs(x)
    if z > 0.5 * 8.8029691931113054295988e01:
        return -1.0 if x < 0 else 1.0
    if z >= 0.625:
        s = exp(2 * z)
        z = 1 - 2 / (s + 1)
        return -z if x < 0 else z
    if x == 0.0:
        return x
    p0, p1, p2 = _TANH_P
    q0, q1, q2 = _TANH_Q
    s = x * x
    return x + x * s * ((p0 * s + p1) * s + p2) / (((s + q0) * s + q1) * s + q2)


_TWO_POW_28 = 268435456.0
_TWO_POW_M28 = 1.0 / _TWO_POW_28


def asinh(x: float) -> float:
    """Go's Asinh (FreeBSD's s_asinh.c)."""
    if x != x or x in (INF, -INF):
        return x
    sign = x < 0
    if sign:
        x = -x
    if x > _TWO_POW_28:
        temp = log(x) + _LN2
    elif x > 2:
        temp = log(2 * x + 1 / (_sqrt(x * x + 1) + x))
    elif x < _TWO_POW_M28:
        temp = x
    else:
        temp = log1p(x + x * x / (1 + _sqrt(1 + x * x)))
    return -temp if sign else temp


def acosh(x: float) -> float:
    """Go's Acosh (FreeBSD's e_acosh.c)."""
    if x < 1 or x != x:
        return NAN
    if x == 1:
        return 0.0
    if x >= _TWO_POW_28:
        return log(x) + _LN2
    if x > 2:
        return log(2 * x - 1 / (x + _sqrt(x * x - 1)))
    t = x - 1
    return log1p(t + _sqrt(2 * t + t * t))


def atanh(x: float) -> float:
    """Go's Atanh (FreeBSD's e_atanh.c)."""
    if x < -1 or x > 1 or x != x:
        return NAN
    if x == 1:
        return INF
    if x == -1:
        return -INF
    sign = x < 0
    if sign:
        x = -x
    if x < _TWO_POW_M28:
        temp = x
    elif x < 0.5:
        temp = x + x
        temp = 0.5 * log1p(temp + temp * x / (1 - x))
    else:
        temp = 0.5 * log1p((x + x) / (1 - x))
    return -temp if sign else temp


# --- pow ------------------------------------------------------------------------------


def _is_odd_int(x: float) -> bool:
    """Go's isOddInt: integral and odd as an int64 (never true from 2**53 up)."""
    if abs(x) >= 9007199254740992.0:
        return False
    xf, xi = math.modf(x)
    return xf == 0 and int(xi) & 1 == 1


def _pow_special(x: float, y: float) -> float | None:
    """Go's special cases of Pow, in Go's order; None when none applies."""
    if y == 0 or x == 1:
        return 1.0
    if x != x or y != y:
        return NAN
    if x == 0:
        if y < 0:
            return math.copysign(INF, x) if _is_odd_int(y) else INF
        return x if _is_odd_int(y) else 0.0
    if y in (INF, -INF):
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y == INF) else INF
    if x in (INF, -INF):
        if x == -INF:
            return pow(-0.0, -y)
        return 0.0 if y < 0 else INF
    if y == 0.5:
        return _sqrt(x)
    if y == -0.5:
        return _div(1.0, _sqrt(x))
    return None


def pow(x: float, y: float) -> float:
    """Go's Pow: its special cases, then Exp(yf*Log(x)) for the fractional
    part of y times x**yi by repeated squaring, the binary exponent kept apart
    (Frexp/Ldexp) so that intermediate products cannot overflow."""
    special = _pow_special(x, y)
    if special is not None:
        return special
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    if yi >= 9.223372036854775808e18:  # 1 << 63
        if x == -1:
            return 1.0
        return 0.0 if (abs(x) < 1) == (y > 0) else INF
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = exp(yf * log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or xe > (1 << 12):
            ae += xe
            break
        if i & 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = _div(1.0, a1)
        ae = -ae
    return ldexp(a1, ae)
