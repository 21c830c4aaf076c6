/* Made by `python -m nodes.ofx.params` from the generate operation's schema: do not edit. */
#define LIPSYNC_PARAM_COUNT 15
static const LipSyncParam LIPSYNC_PARAMS[LIPSYNC_PARAM_COUNT] = {
    {"audio", "Audio", "the dub: any audio file (or a video's audio track)", kOfxParamTypeString, 0, 1, 0.0, "", 0, 0.0, 0, 0.0, {NULL}},
    {"shot", "Shot", "shot sidecar to use instead of the one next to the plate", kOfxParamTypeString, 0, 1, 0.0, "", 0, 0.0, 0, 0.0, {NULL}},
    {"model", "Model", "StyleLipSync model (.safetensors): for --mouth rendered the renderer, for --mouth generator the generator or an actor file (not set: the bundled one)", kOfxParamTypeString, 0, 1, 0.0, "", 0, 0.0, 0, 0.0, {NULL}},
    {"motion_model", "Motion model", "motion model file (.safetensors; not set: the bundled one)", kOfxParamTypeString, 0, 1, 0.0, "", 0, 0.0, 0, 0.0, {NULL}},
    {"audio_offset", "Audio offset", "start the dub later (positive) or earlier (negative) than the shot's first frame: frames as 3f, seconds as 0.12s; write a negative one as --audio-offset=-3f", kOfxParamTypeString, 0, 0, 0.0, "0", 0, 0.0, 0, 0.0, {NULL}},
    {"face", "Face", "the face to dub when there are several (0 = the largest) (not set: the shot's choice)", kOfxParamTypeInteger, 0, 0, -1.0, "", 1, -1.0, 0, 0.0, {NULL}},
    {"mouth", "Mouth", "how the new mouth is made: 'footage' moves the actor's own mouth from the shot's frames to the shape the dub's motion asks for (real texture at the plate's resolution); 'rendered' also renders over the moved frames with the StyleLipSync renderer, which repaints what it distrusts at its crop's resolution and keeps the finer texture (about half as fast); 'generator' draws the mouth with the StyleLipSync generator from the audio alone (soft); 'auto': 'footage', or what the model given makes (a renderer: 'rendered'; a generator or an actor model from `lipsync personalize`: 'generator')", kOfxParamTypeChoice, 0, 0, 0.0, "", 0, 0.0, 0, 0.0, {"auto", "footage", "rendered", "generator", NULL}},
    {"articulation", "Articulation", "articulation gain for the whole shot: how far the mouth moves from rest (1: the actor's own; 0 holds it at rest; not set: the shot sidecar's motion gain, else 1); the sidecar's keyed motion corrections apply on top", kOfxParamTypeDouble, 0, 0, -1.0, "", 1, -1.0, 1, 3.0, {NULL}},
    {"device", "Device", "where the model runs", kOfxParamTypeChoice, 0, 0, 0.0, "", 0, 0.0, 0, 0.0, {"auto", "cpu", "cuda", NULL}},
    {"batch", "Batch", "frames generated together; chunks of one shot must use the same value", kOfxParamTypeInteger, 0, 0, 8.0, "", 1, 1.0, 0, 0.0, {NULL}},
    {"grow", "Grow", "grow the mask by this many plate pixels (negative shrinks)", kOfxParamTypeDouble, 1, 0, 0.0, "", 1, -500.0, 1, 500.0, {NULL}},
    {"feather", "Feather", "soft edge of the mask in plate pixels (automatic: about 6% of the face height)", kOfxParamTypeDouble, 1, 0, -1.0, "", 1, -1.0, 1, 500.0, {NULL}},
    {"offset_y", "Offset y", "move the mask down by this many plate pixels (negative: up)", kOfxParamTypeDouble, 1, 0, 0.0, "", 1, -500.0, 1, 500.0, {NULL}},
    {"jaw_extension", "Jaw extension", "how far below the chin the mask reaches, in nose-to-chin distances", kOfxParamTypeDouble, 1, 0, 0.25, "", 1, 0.0, 1, 1.5, {NULL}},
    {"mouth_margin", "Mouth margin", "sideways widening of the mask below the nose, in face widths", kOfxParamTypeDouble, 1, 0, 0.05, "", 1, -0.2, 1, 0.5, {NULL}},
};
