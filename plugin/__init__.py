"""The PySide6 panel."""
