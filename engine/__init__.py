"""Domain core of the UMKM marketing engine (Perbup TTS 17/2025).

Arrows point one way: ``web`` and ``workers`` call ``engine``; ``engine`` reaches
``channels`` only through the channel registry.
"""

__version__ = "0.1.0"

from engine.common import logsafe as _logsafe

_logsafe.install()
