"""The evaluation protocols, one file each, registered by being present.

Importing this package imports every module in it (a file that calls
``PROTOCOLS.add(name, ProtocolSpec(...))`` is a protocol; nothing lists the files), then every
``obliviate.protocols`` entry point of the installed packages, so that another package ships a
protocol by declaring, in its ``pyproject.toml``::

    [project.entry-points."obliviate.protocols"]
    mine = "my_package.my_protocol"

The built-in ones: ``quick``, ``challenge``, ``ulira`` (classifiers), ``tofu`` (language
models), ``robustness`` and ``sequential`` (both). How to write one: docs/protocols.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

ENTRY_POINTS = "obliviate.protocols"


def discover() -> list[str]:
    """Import every protocol module of this package and of the entry points; their names."""
    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{module}")
        found.append(module)
    for point in entry_points(group=ENTRY_POINTS):
        point.load()
        found.append(point.value)
    return found


MODULES = discover()
