"""The sizes of a product photo, by name (no imaging library needed to know them).

Apart from :mod:`engine.media.images` so the planners and the delivery worker, which
only name sizes, do not load Pillow and its HEIC plugin (~15 MB per process).
"""

from __future__ import annotations

# name -> (width, height): the showcase grid, Instagram square, Instagram/TikTok portrait.
SIZES = {"thumb": (320, 320), "square": (1080, 1080), "portrait": (1080, 1350)}
DEFAULT_SIZE = "square"
