"""A small OpenColorIO config for the tests, written as text (no OpenColorIO needed to write it: the fake Nuke
writes it from a bare Python). Its reference is scene-linear Rec.709 (`linear`, also the scene_linear role);
`ACEScg` is linear with the AP1 primaries, `sRGB` the sRGB encoding of Rec.709, and the one display shows sRGB.
"""

from __future__ import annotations

from pathlib import Path

# AP1 (ACEScg, D60) to linear Rec.709 (D65), Bradford-adapted: the matrix ACES publishes.
AP1_TO_REC709 = ((1.7050509, -0.6217921, -0.0832588), (-0.1302564, 1.1408047, -0.0105483), (-0.0240033, -0.1289690, 1.1529723))
SPACES = ("linear", "ACEScg", "sRGB")


def config_text() -> str:
    matrix = ", ".join(str(v) for row in AP1_TO_REC709 for v in (*row, 0)) + ", 0, 0, 0, 1"
    return f"""ocio_profile_version: 2

roles:
  default: linear
  scene_linear: linear

file_rules:
  - !<Rule> {{name: Default, colorspace: default}}

displays:
  sRGB:
    - !<View> {{name: Standard, colorspace: sRGB}}

colorspaces:
  - !<ColorSpace>
    name: linear
    encoding: scene-linear

  - !<ColorSpace>
    name: ACEScg
    encoding: scene-linear
    to_scene_reference: !<MatrixTransform> {{matrix: [{matrix}]}}

  - !<ColorSpace>
    name: sRGB
    encoding: sdr-video
    from_scene_reference: !<ExponentWithLinearTransform> {{gamma: 2.4, offset: 0.055, direction: inverse}}
"""


def write_config(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(), encoding="utf-8")
    return path
