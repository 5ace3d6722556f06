"""MLStrategy dropped into your own Cerebro: your feeds, your broker settings, your analyzers.

Run after training a model (``python train_ml_strategy.py``)::

    python examples/own_cerebro.py

Two stock backtrader feeds over the embedded Coinbase BTC/USD hourly sample's last bars (a
``GenericCSVData`` from a CSV file and a ``PandasData`` from a frame), one ``MLStrategy``
trading both with a stop-loss and a take-profit. The strategy computes each feed's features
bar by bar with the streaming engine, exactly as the live bot does.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from datafeeds import load_sample
from datafeeds.bt.compat import bt  # backtrader, patched for Python 3.10+ and headless plots
from mlstrategy.trading.strategy import MLStrategy


def main() -> None:
    bars = load_sample("btcusd-1h").iloc[-2000:]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "btcusd.csv"
        bars.tz_convert(None).to_csv(csv, date_format="%Y-%m-%d %H:%M:%S")
        cerebro = bt.Cerebro()
        cerebro.adddata(bt.feeds.GenericCSVData(
            dataname=str(csv), dtformat="%Y-%m-%d %H:%M:%S", timeframe=bt.TimeFrame.Minutes,
            compression=60, datetime=0, open=1, high=2, low=3, close=4, volume=5,
            openinterest=-1), name="csv")
        cerebro.adddata(bt.feeds.PandasData(dataname=bars.tz_convert(None),
                                            timeframe=bt.TimeFrame.Minutes, compression=60),
                        name="pandas")
        cerebro.addstrategy(MLStrategy, model="production", models_dir="models",
                            fraction=0.45, stop_loss=0.03, take_profit=0.06)
        cerebro.broker.setcash(100_000.0)
        cerebro.broker.setcommission(commission=0.001)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
        cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
        strategy = cerebro.run()[0]
    trades = strategy.analyzers.trades.get_analysis()
    print(f"final value {cerebro.broker.getvalue():,.2f} from 100,000.00")
    print(f"closed trades {trades.get('total', {}).get('closed', 0)}, max drawdown "
          f"{strategy.analyzers.drawdown.get_analysis()['max']['drawdown']:.2f}%")
    for data, book in strategy.books.items():
        print(f"{data._name}: {len(book.probas)} bars, last P(up) {book.probas[-1]:.3f}")


if __name__ == "__main__":
    main()
