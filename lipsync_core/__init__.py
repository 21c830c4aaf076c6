"""LipSync core library: media I/O, face analysis, the StyleLipSync model, training and the dub pipeline.

No Qt and no host imports here: `plugin/` and `nodes/` import this package, never the other way.
"""

__version__ = "0.1.0"
