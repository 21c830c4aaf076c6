"""The worker half of the native OpenFX bundle `LipSync.ofx` (built from `lipsync_ofx.c` by `make ofx`):
`server.py` answers the plug-in's requests in the core's Python, `params.py` holds the node's parameters
and writes the `params.h` the plug-in describes them from. README.md says how it fits together.
"""
