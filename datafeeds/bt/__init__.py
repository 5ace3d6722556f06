"""backtrader adapters: the compat import (``compat.bt``), bar times as backtrader floats
(``dates``), the preloaded historical feed (``feed``) and the live ccxt feed (``live_feed``)."""
