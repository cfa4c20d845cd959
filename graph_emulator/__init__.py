"""A standalone emulator of Microsoft Entra ID and Microsoft Graph v1.0 (the parts the product uses).

It imports nothing from the product. Start it with ``python -m graph_emulator``
or in-process with :class:`EmulatorServer`; steer it through ``/_emulator/``
(see :mod:`graph_emulator.testing`).
"""

from .server import EmulatorServer

__all__ = ["EmulatorServer"]
