"""Media I/O: `frames` (one reader for every plate), `audio` (16 kHz, log-mel, per-frame windows),
`writers` (mp4/mov/EXR/PNG, atomic), `colour` (plates <-> model input, compositing), `ocio` (a float plate's
OpenColorIO colourspace), `probe` (CLI)."""
