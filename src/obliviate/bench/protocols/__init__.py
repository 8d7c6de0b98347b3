"""The evaluation protocols, one file each; importing this package registers them.

Each file defines a driver and registers its :class:`~obliviate.bench.spec.ProtocolSpec`:
``quick``, ``challenge``, ``ulira`` (classifiers), ``tofu`` (language models) and
``robustness`` (both).
"""

from obliviate.bench.protocols import challenge, quick, robustness, tofu, ulira  # noqa: F401
