"""Bars from an exchange through ccxt (with ``execution``, the only code that imports ccxt).

``client`` builds the ccxt object (credentials from the environment only), ``translate`` is
the one place ccxt exceptions are caught, ``history`` downloads candles and ``candles`` polls
closed candles live by the exchange's clock. Orders are the ``execution`` package's.
"""
