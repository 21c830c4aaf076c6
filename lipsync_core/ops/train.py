"""The train operation (`lipsync train model`) and the command-line steps around it: prepare the data,
train SyncNet, package, write the model card. Each step resumes where it stopped."""

from __future__ import annotations

from ..models.config import CONFIGS
from .schema import Operation, Param
from .shared import DEVICE, SEED

CACHE = Param("cache", "path", "training cache folder", default="cache/train")
CONFIG = Param("config", "choice", "model config", default="cpu", choices=tuple(sorted(CONFIGS)))
# The options every data-reading step takes (prepare, syncnet, model, card).
COMMON = (CACHE, CONFIG, DEVICE, SEED)


def _run_dir(default: str) -> Param:
    # --run-dir too: under torchrun, whose own options --run-path and --run_path make a bare --run ambiguous.
    return Param("run_dir", "path", "run folder (resumes if it holds a state)", default=default, flags=("--run-dir", "--run"))


TRAIN = Operation(
    name="train",
    command=("train", "model"),
    help="train the generator",
    description="Train the generator on the prepared cache (`lipsync train prepare`), keeping the weights that dub "
    "other speech best on the dev split; run again with the same folders to resume.",
    inputs=(
        CACHE,
        Param("syncnet", "model", "trained SyncNet (.safetensors) for the sync loss"),
        Param("init", "model", "start from this model file's generator weights"),
    ),
    outputs=(_run_dir("runs/model"),),
    params=(
        CONFIG, DEVICE, SEED,
        Param("steps", "int", "training steps", default=20000,
              range=(1, None)),
        Param("batch", "int", "windows of 5 frames per step", default=4, range=(1, None)),
        Param("lr", "float", "Adam learning rate", default=1e-3, range=(0, None)),
        Param("lambda_rec", "float", "weight of the reconstruction loss", default=10.0, range=(0, None)),
        Param("lambda_sync", "float", "weight of the SyncNet loss", default=0.1, range=(0, None)),
        Param("lambda_mouth", "float", "weight of the mouth shape read off the audio codes (training only; 0 turns "
              "it off)", default=1.0, range=(0, None)),
        Param("lambda_cross", "float", "weight of the cross-audio loss: each window also rendered with other speech must "
              "show that speech's mouth, as a mouth reader fitted first on the footage sees it (training only; 0 turns it off)",
              default=1.0, range=(0, None)),
        Param("lambda_adv", "float", "weight of the adversarial term: a patch discriminator on the lower face, for crisper "
              "lips (training only; 0, the default, turns it off)", default=0.0, range=(0, None)),
        Param("lambda_trust", "float", "config cpu_footage (the footage path's renderer): weight of the share of the "
              "warped real frame it paints over instead of passing through", default=0.5, range=(0, None)),
        Param("sync_start", "int", "steps before the sync loss joins", default=0, range=(0, None)),
        Param("save_every", "int", "steps between saved states", default=100, range=(1, None)),
        Param("eval_every", "int", "steps between dev-split evaluations", default=500, range=(1, None)),
        Param("select_by_speech", "bool", "at every dev evaluation also dub the dev clips with the bundled speech pool "
              "and keep the weights whose mouths follow it best (best.safetensors, ~1 min per evaluation on CPU); "
              "generator configs only: cpu_footage's renderer paints over warped frames, its best weights are the "
              "dev losses' best",
              default=True),
    ),
)

PREPARE = Operation(
    name="train_prepare",
    command=("train", "prepare"),
    help="build the training cache from clips (incremental)",
    description="Track, align and mask every clip once into the training cache; clips already there are skipped.",
    inputs=(
        Param("clips", "path", "video files or folders of them (not set: --manifest)", many=True, positional=True),
        Param("manifest", "path", "a manifest.csv like ../shared/data/manifest.csv"),
    ),
    outputs=(CACHE,),
    params=(
        Param("split", "str", "split for clips given directly", default="train"),
        Param("splits", "str", "manifest splits to prepare, comma-separated", default="train,dev"),
        CONFIG, DEVICE, SEED,
    ),
    node=False,
)

SYNCNET = Operation(
    name="train_syncnet",
    command=("train", "syncnet"),
    help="train SyncNet contrastively, early-stopped on the dev split",
    description="Train the SyncNet the generator's sync loss and the measures use, on the prepared cache.",
    inputs=(CACHE,),
    outputs=(_run_dir("runs/syncnet"),),
    params=(
        CONFIG, DEVICE, SEED,
        Param("steps", "int", "training steps", default=3000, range=(1, None)),
        Param("batch", "int", "windows per step", default=48, range=(1, None)),
        Param("lr", "float", "Adam learning rate", default=5e-4, range=(0, None)),
    ),
    node=False,
)

TRAIN_MOTION = Operation(
    name="train_motion",
    command=("train", "motion"),
    help="train the motion model (speech -> mouth shape), early-stopped on the dev split",
    description="Train the motion model on the prepared cache's own audio and face-mesh mouth shapes, with audio "
    "augmentation (level, noise, EQ, voice, speed); keeps the weights whose mouth opening follows the dev clips' "
    "speech best (run_dir/motion.safetensors). Run again with the same folders to resume.",
    inputs=(CACHE,),
    outputs=(_run_dir("runs/motion"),),
    params=(
        SEED,
        Param("steps", "int", "training steps", default=3000, range=(1, None)),
        Param("batch", "int", "2.5 s segments per step", default=32, range=(1, None)),
        Param("lr", "float", "Adam learning rate", default=1e-3, range=(0, None)),
    ),
    node=False,
)

MOTION_ENSEMBLE = Operation(
    name="train_motion_ensemble",
    command=("train", "motion-ensemble"),
    help="average motion models trained alike (other seeds) into one",
    description="Write one motion model that averages the predictions of several trained alike on the same cache "
    "(`lipsync train motion --seed N` into other run folders): one network's dev opening r moves by a few hundredths "
    "from seed to seed, their average keeps what they agree on. Its average gain is measured again on the train clips.",
    inputs=(
        Param("models", "model", "motion model files (runs/motion*/motion.safetensors)", required=True, many=True,
              positional=True),
        CACHE,
    ),
    outputs=(Param("output", "model", "the motion model file to write (.safetensors)", required=True, flags=("-o", "--output")),),
    node=False,
)

MOTION_CARD = Operation(
    name="train_motion_card",
    command=("train", "motion-card"),
    help="measure a motion model on the dev split and write its model card",
    description="Measure a motion model on the prepared dev clips (own audio with the actor's style from the other "
    "half of each clip, other speech, silence), beside a frozen mouth and the lips the generator draws, and write its "
    "model card, metrics and a plot of predicted against real mouth opening.",
    inputs=(
        Param("model", "model", "motion model file (runs/motion/motion.safetensors)", required=True, positional=True),
        Param("generator", "model", "StyleLipSync model file whose lips to measure beside (not set: the bundled one)"),
        Param("manifest", "path", "manifest.csv naming each clip's license"),
        CACHE,
    ),
    outputs=(Param("out", "path", "folder for the card, metrics and plot (not set: beside the model)"),),
    params=(DEVICE,),
    node=False,
)

PACKAGE = Operation(
    name="train_package",
    command=("train", "package"),
    help="bundle a trained generator and SyncNet into one model file",
    description="Write one model file holding the generator and the SyncNet, with both runs' facts.",
    inputs=(
        Param("model", "model", "the generator (runs/model/model.safetensors)", required=True, positional=True),
        Param("syncnet", "model", "the SyncNet (runs/syncnet/syncnet.safetensors)", required=True, positional=True),
    ),
    outputs=(Param("output", "model", "the model file to write (.safetensors)", required=True, flags=("-o", "--output")),),
    node=False,
)

CARD = Operation(
    name="train_card",
    command=("train", "card"),
    help="measure a model on the dev split and write its model card",
    description="Measure a model on the prepared dev clips (own audio and other speech) and write its model card, "
    "a side-by-side video and a contact sheet of mouths.",
    inputs=(
        Param("model", "model", "model file (.safetensors with generator and SyncNet)", required=True, positional=True),
        Param("cross_audio", "audio", "speech not from the dev clips, for cross-audio dubbing", required=True),
        Param("manifest", "path", "manifest.csv naming each clip's license"),
        CACHE,
    ),
    outputs=(Param("out", "path", "folder for the card, video and contact sheet (not set: beside the model)"),),
    params=(CONFIG, DEVICE, SEED),
    node=False,
)
