"""Trading: from P(up) to orders (``inference``, ``decision``), the strategy's options
(``strategy_params``), backtrader's ``MLStrategy`` and the Numba trading ``engine`` that
runs the same rules."""
