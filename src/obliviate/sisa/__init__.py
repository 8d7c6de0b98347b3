"""SISA (Bourtoule et al. 2021): sharded, isolated, sliced, aggregated training for exact deletion.

Python API: :class:`SisaModel` (a persistent ensemble with a deletion ledger, one writer at a
time, crash recovery; the rules are in :mod:`obliviate.sisa.model_dir`), the plain pieces
:class:`ShardPlan`, :func:`train_shard` and :class:`SisaEnsemble`, and the bench method ``sisa``
(``obliviate.methods.sisa``). Command line: ``obliviate sisa train|forget|retry|cancel|status``.
"""

from obliviate.sisa.deletion import ForgetResult
from obliviate.sisa.ensemble import SisaEnsemble
from obliviate.sisa.ledger import Ledger, Request
from obliviate.sisa.model_dir import SisaModel
from obliviate.sisa.plan import ShardPlan, epochs_per_slice
from obliviate.sisa.training import reinit_factory, train_shard

__all__ = ["ForgetResult", "Ledger", "Request", "ShardPlan", "SisaEnsemble", "SisaModel",
           "epochs_per_slice", "reinit_factory", "train_shard"]
