"""Inequality measures: relative ranks, classical and Bayesian slope/relative index of inequality."""
