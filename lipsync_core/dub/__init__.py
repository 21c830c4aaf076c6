"""The generate operation (dubbing) and its commands.

    pipeline.py  dub(...) -> DubReport, and Renderer (the same work frame by frame)
    outputs.py   what an output name means (.mp4, .mov, .####.exr, .####.png) and each frame converted for it
    cli.py       `lipsync dub`
    batch.py     `lipsync batch` (shot lists; how a render farm splits a shot into chunks)
    demo.py      `lipsync demo` (`make demo`)
"""
