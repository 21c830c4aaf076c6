"""Nuke GUI start-up for LipSync (menu.py): the node in the Nodes toolbar, the panel as its own process
(Nodes > LipSync > Open panel), and the check that flags a node whose result is stale. Nothing heavy
is imported here, nor ever into Nuke: the node reads the schema from plugin.json, and the panel's Qt
and the core run in the LipSync Python (lipsync_core/dub/worker.py).
"""

import nuke

import lipsync_nuke

menu = nuke.menu("Nodes").addMenu("LipSync")
menu.addCommand("LipSync", "lipsync_nuke.create()")
menu.addCommand("Open panel", "lipsync_nuke.open_panel()")
nuke.addUpdateUI(lipsync_nuke.update_ui, nodeClass=lipsync_nuke.NODE_NAME)  # the gizmo's class
