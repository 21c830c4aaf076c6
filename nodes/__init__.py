"""Host adapters (OpenFX, Nuke, DaVinci Resolve): thin translations onto lipsync_core operations."""
