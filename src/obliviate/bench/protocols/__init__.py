"""The evaluation protocols, one file each; importing this package registers them.

Each file defines a driver and registers its :class:`~obliviate.bench.spec.ProtocolSpec`:
``quick``, ``challenge``, ``ulira`` (classifiers) and ``tofu`` (language models).
"""

from obliviate.bench.protocols import challenge, quick, tofu, ulira  # noqa: F401
