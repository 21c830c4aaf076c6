"""`lipsync train card`: measure a model on the dev split and write its model card, a side-by-side
video (real | static mouth | ours) and a contact sheet of mouths over time next to it."""

from __future__ import annotations

from pathlib import Path

from ..eval.report import MEASURES_TEXT, contact_sheet, markdown_table, mean_rows, side_by_side, write_json
from ..evaluate import evaluate_clip, load_models
from .data import PreparedClip
from .speech_pool import speech_windows


def write_card(model_path: Path, dev: list[PreparedClip], out_dir: Path, cross_audio: Path, licenses: dict[str, str]) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    model, syncnet, facts = load_models(model_path)
    other = speech_windows(cross_audio, model.config.mel_window)
    per_clip = {}
    for i, clip in enumerate(dev):
        rows = evaluate_clip(model, syncnet, clip, other)
        frames = rows.pop("_frames")
        per_clip[clip.name] = rows
        if i == 0:
            side_by_side(out_dir / f"{model_path.stem}_side_by_side.mp4", clip, frames)
            contact_sheet(out_dir / f"{model_path.stem}_mouths.png", frames)
    summary = mean_rows(per_clip)
    write_json(out_dir / f"{model_path.stem}_metrics.json", {"mean": summary, "clips": per_clip})
    card = out_dir / f"{model_path.stem}.md"
    card.write_text(_card_text(model_path, model, facts, summary, dev, cross_audio, licenses))
    return summary


def _card_text(model_path, model, facts, summary, dev, cross_audio, licenses) -> str:
    c = model.config
    data = "\n".join(f"- {name}: {licenses.get(name, 'see ../shared/data/manifest.csv')}" for name in facts.get("data", []))
    return f"""# Model card: {model_path.name}

StyleLipSync generator (config `{c.name}`: {c.size} px aligned crops, W+ of {c.n_codes} x {c.w_dim},
{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) with our SyncNet (the one the sync
measures below use), trained from scratch on CPU by `lipsync train` ({facts.get('total_steps', facts.get('step', '?'))} generator steps
in all; the last run: {facts.get('step', '?')} steps, {_recipe(facts)}).

## Dev-split measures
Reconstruction: each of the {len(dev)} dev clips ({', '.join(d.name for d in dev)}) dubbed with its
own audio, reference = its first face frame, measured in the aligned crop. `static` pastes the
reference's lower face into every frame (no lip motion); the `cross_audio` rows dub the same clips
with other speech (`{cross_audio.name}`) and measure sync against that speech: `cross_audio_plate` is
the footage left untouched, `cross_audio_static` the static mouth, `cross_audio` ours.

{markdown_table(summary)}

{MEASURES_TEXT}

Side-by-side video (real | static | ours): `{model_path.stem}_side_by_side.mp4`; mouths over time
(rows: real, static, ours, ours with other speech): `{model_path.stem}_mouths.png`.

## Data seen
Train split of `../shared/data` (AV clips; dev split held out). Licenses as the manifest gives them;
many are research-only, so this model is for evaluation and research use:
{data}
"""


def _recipe(facts: dict) -> str:
    recipe = facts.get("recipe")
    if not recipe:
        return "recipe not recorded"
    init = f", continuing `{recipe['init']}`" if recipe.get("init") else ""
    return (f"batch {recipe['batch']} windows, learning rate {recipe['lr']:g}, loss weights: reconstruction "
            f"{recipe['lambda_rec']:g}, SyncNet {recipe['lambda_sync']:g}, audio mouth read-out {recipe['lambda_mouth']:g}, "
            f"cross-audio {recipe.get('lambda_cross', 0):g}, adversarial {recipe.get('lambda_adv', 0):g}{init}")
