"""The feature kinds' codes: the number each kind's step is chosen by, in ``kinds.KINDS``,
``steps`` and the kernels alike (Numba reads these as compile-time constants)."""

LOG_RETURN = 0
SMA_RATIO = 1
EMA_RATIO = 2
RSI = 3
NATR = 4
VOLATILITY = 5
ZSCORE = 6
BOLLINGER = 7
RANGE_POSITION = 8
CANDLE = 9
CYCLIC_TIME = 10
PCT_RETURN = 11
MACD = 12
STOCHASTIC = 13
WILLIAMS_R = 14
CCI = 15
ADX = 16
OBV = 17
MFI = 18
MOMENTS = 19
RANGE_VOLATILITY = 20
DISTANCE_EXTREME = 21
LEVEL = 22
