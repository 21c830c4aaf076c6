"""Nuke start-up for LipSync (init.py): runs in every Nuke session, with or without a GUI (`nuke -t`,
render farms), so it only makes the code importable: no menus, no Qt, no model.

Install: add this folder to NUKE_PATH (or `nuke.pluginAddPath` it from your own init.py). The core
renders, and the panel runs, in a separate Python (see lipsync_core/dub/worker.py: $LIPSYNC_PYTHON,
else the repository's .venv); Nuke's own Python imports only the standard library from here.
"""

import os
import sys

# This folder is nodes/nuke in the repository: the repository root holds plugin.json (the parameter
# schema) and lipsync_core/dub/worker.py (the worker launcher the node uses, standard library only).
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
if _REPO not in sys.path:
    sys.path.append(_REPO)
