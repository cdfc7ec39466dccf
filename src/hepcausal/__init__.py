"""hepcausal: Bayesian causal inference for inequality in English general practice."""

__version__ = "0.1.0"
