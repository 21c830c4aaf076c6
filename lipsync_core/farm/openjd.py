"""The farm job as an Open Job Description template (the format AWS Deadline Cloud runs; `openjd run` runs it on
one machine). One job; per shot an analyze step, a render step whose tasks are chunks of frames (OpenJD's task
chunking: the scheduler hands each task a contiguous range A-B) and an assemble step (a movie joined, a sequence signed)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import LipSyncError
from .job import FRAMES, FarmShot

SPECIFICATION = "jobtemplate-2023-09"
NAME_LIMIT = 64  # OpenJD's longest step name


def job_template(name: str, shots: list[FarmShot], lipsync: str, chunk_size: int, device: str) -> dict:
    """The template, with the lipsync command, the chunk size and the device as job parameters a submitter can change."""
    parameters = [
        # STRING, not PATH: OpenJD reads a PATH default as relative to the template.
        {"name": "LipSync", "type": "STRING", "default": lipsync, "description": "the lipsync command as the workers find it"},
        {"name": "ChunkSize", "type": "INT", "default": chunk_size, "minValue": 1, "description": "frames per render task"},
        {"name": "Device", "type": "STRING", "default": device, "allowedValues": ["auto", "cpu", "cuda"],
         "description": "where the model runs"},
    ]
    steps = []
    for shot in shots:
        analyze, render, assemble = (f"{shot.name} {what}"[-NAME_LIMIT:] for what in ("analyze", "render", "assemble"))
        steps.append(_step(analyze, shot.analyze))
        steps.append(_step(render, shot.render, after=analyze, parameters=[{
            "name": "Frames", "type": "CHUNK[INT]", "range": f"{shot.first}-{shot.last}",
            "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"},
        }]))
        steps.append(_step(assemble, shot.assemble, after=render))
    return {"specificationVersion": SPECIFICATION, "extensions": ["TASK_CHUNKING"], "name": name[:NAME_LIMIT],
            "parameterDefinitions": parameters, "steps": steps}


def _step(name: str, command: list[str], after: str | None = None, parameters: list | None = None) -> dict:
    args = ["{{Task.Param.Frames}}" if arg == FRAMES else _escaped(arg) for arg in command[1:]]
    args = ["{{Param.Device}}" if before == "--device" else arg for before, arg in zip(["", *args], args)]
    step = {"name": name, "script": {"actions": {"onRun": {"command": "{{Param.LipSync}}", "args": args}}}}
    if after is not None:
        step["dependencies"] = [{"dependsOn": after}]
    if parameters:
        step["parameterSpace"] = {"taskParameterDefinitions": parameters}
    return step


def _escaped(arg: str) -> str:
    # A path is text to OpenJD, but '{{' in it would start a format expression.
    if "{{" in arg:
        raise LipSyncError(f"{arg}: an Open Job Description job cannot pass text holding '{{{{': rename it")
    return arg


def write_job(folder: Path, template: dict) -> Path:
    """JOB/template.json: a job bundle (`openjd run JOB/template.json`, `deadline bundle submit JOB`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "template.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(template, indent=2) + "\n")
    tmp.replace(path)
    return path
