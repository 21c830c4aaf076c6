"""The generate operation (dubbing) and its commands.

    pipeline.py  dub(...) -> DubReport, and Renderer (the same work frame by frame)
    outputs.py   what an output name means (.mp4, .mov, .####.exr, .####.png) and each frame converted for it
    cli.py       `lipsync dub`
    batch.py     `lipsync batch` (shot lists; how a render farm splits a shot into chunks)
    timeline.py  `lipsync dub-timeline` (an OpenTimelineIO edit in, the same edit playing the dubbed media out)
    demo.py      `lipsync demo` (`make demo`)
    worker.py    a `lipsync` command in a worker process, for host adapters (standard library only)
    timing.py    audio offsets as users write them (standard library only)
"""
