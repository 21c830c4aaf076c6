"""Host adapters (OpenFX-style, Nuke, DaVinci Resolve): thin translations onto lipsync_core operations."""
