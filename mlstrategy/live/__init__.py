"""The trading bot: paper and live sessions through ccxt, inference only.

``runner`` wires a live feed, a broker and ``MLStrategy`` into Cerebro; ``session`` is the
strategy's live side (journal, risk gate, hot model swap, status lines); ``journal`` is the
SQLite book; ``reconcile`` squares it with the exchange at start; ``risk`` holds the limits;
``hot_swap`` follows ``models/production.json`` between bars.
"""
