"""The model layer: every statistical model of hepcausal, one backend module, one family table.

* :mod:`~hepcausal.models.gradient` (with ``gradient_data``, ``gradient_pymc``,
  ``gradient_sbc``): the hierarchical ICB x year gradient (SII) model; PyMC and Stan.
* :mod:`~hepcausal.models.panel_effects`: the panel-effects model behind DiD, DDD, event study
  and dose-response; PyMC and Stan.
* :mod:`~hepcausal.models.synthetic_control`: the Bayesian synthetic-control model; PyMC only.
* :mod:`~hepcausal.models.backend`: the PyMC / Stan dispatch (``ModelSpec``, ``sample_model``),
  Stan output tidying and the shared sum-to-zero basis;
  :mod:`~hepcausal.models.stan_engine` runs the programs in ``models/*.stan``.
* :mod:`~hepcausal.models.families`: the likelihood families of the gradient model.
* :mod:`~hepcausal.models.priors`: the priors convention (every prior is a scale on the
  standardised outcome) and the base of the prior dataclasses.

The estimators that fit these models and summarise their posteriors live in
:mod:`hepcausal.causal` and :mod:`hepcausal.models.gradient`.
"""
