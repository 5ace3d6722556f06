"""Order execution: what turns the strategy's decisions into orders on an exchange.

``orders`` submits an order so that no decision is ever placed twice (``deadline``: when a
lost answer can no longer execute), ``sweep`` adopts executions found late, ``holdings``
keeps the bot to what is provably its own, ``broker`` is the backtrader broker over them, and
``simulator`` (with ``sim_book``) is a local exchange over real HTTP for replays and tests.
It builds on ``datafeeds`` (the ccxt client and its error translation) and nothing above.
"""
