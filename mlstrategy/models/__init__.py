"""Model wrappers behind one small contract, and the Numba evaluator of CatBoost's trees."""
