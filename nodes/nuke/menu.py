"""Nuke GUI start-up for LipSync (menu.py): the node in the Nodes toolbar and the panel as a dockable
pane (Windows > Custom > LipSync). Nothing heavy is imported here: the node module reads the schema
when a node is made, and the panel's Qt code loads when the pane is first opened.
"""

import nuke
import nukescripts

import lipsync_nuke

nuke.menu("Nodes").addMenu("LipSync").addCommand("LipSync", "lipsync_nuke.create()")
# Nuke makes the widget by evaluating this name when the pane opens; lipsync_nuke.Panel imports Qt then.
nukescripts.panels.registerWidgetAsPanel("lipsync_nuke.Panel", "LipSync", "org.lipsync.LipSyncPanel")
