"""Inequality measures: relative ranks, classical and Bayesian slope/relative indices."""
