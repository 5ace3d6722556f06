"""The model registry: artifacts (``artifact``), each market's production model and history
(``production``), champion/challenger (``promotion``), and the move from older layouts
(``migration``)."""
