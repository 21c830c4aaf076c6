"""OpenFX-style adapter: the LipSync dub as an OFX image effect (Filter context), modelled in Python.

`effect.main_entry(action, handle, in_args, out_args)` answers the OFX actions the way a C plug-in's
mainEntry does; `api.py` names the actions, properties and status codes. README.md says what a native
.ofx bundle needs on top.
"""
