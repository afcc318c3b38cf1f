"""Audio decoding and probing with PyAV. Independent of ``edge`` and ``notes``."""
