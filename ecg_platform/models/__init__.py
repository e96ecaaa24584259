"""The residual 1D CNN, its encoder/head split and freezing."""
