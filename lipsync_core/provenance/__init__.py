"""What a dubbed output says about itself: the facts of the render (facts.py), signed as C2PA content credentials
(credentials.py for a video, sequence.py for an image sequence's sidecar, with the signing identity from
identity.py), written into image-sequence headers (facts.py), an invisible watermark inside the dubbed region
(watermark.py), and `lipsync verify` reading all of it back (verify.py).

Nothing here reaches the network: signing uses a local key, and reading checks the file against itself."""
