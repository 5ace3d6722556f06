"""Everything that talks to an exchange through ccxt (the only code that imports ccxt).

``client`` builds the ccxt object (credentials from the environment only), ``translate`` is
the one place ccxt exceptions are caught, ``history`` downloads candles, ``candles`` polls
closed candles live by the exchange's clock, ``orders`` submits orders so that none is ever
placed twice, ``broker`` is the backtrader broker over them, and ``simulator`` is a local
exchange over real HTTP for replays and tests.
"""
