"""Certified removal (Guo et al. 2020) for L2-regularised logistic regression.

:class:`CertifiedLogisticRegression` trains with objective perturbation and removes rows by
Newton steps while tracking the gradient-residual budget; :mod:`obliviate.certified.objective`
holds the maths as plain functions. The bench method is ``certified-removal``.
"""

from obliviate.certified.removal import Certificate, CertifiedLogisticRegression, unit_rows

__all__ = ["Certificate", "CertifiedLogisticRegression", "unit_rows"]
