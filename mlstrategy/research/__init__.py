"""Research: from bars to a validated model (dataset, labels, purged splits, training with
its metrics and sanity gate, the trial ledger, and the hyper-parameter sweep)."""
