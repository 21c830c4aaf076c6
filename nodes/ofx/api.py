"""The names of the OpenFX image-effect API this adapter answers (the C macros' string values).

A host (or the C shim of a native bundle) hands the effect Python objects with these duck types:
- descriptor: `props` (dict), `define_clip(name) -> dict`, `define_param(param_type, name) -> dict`
- instance: `props` (dict), `clip(name) -> Clip`, `param(name) -> Param`
- Clip: `props` (dict: connected, frame range, frame rate, premultiplication), `region_of_definition(time)`,
  `get_image(time, render_scale) -> Image | None`
- Image: `props` (dict: bounds, premultiplication), `pixels` (H x W x 4 float32, rows bottom-up as in OFX)
- Param: `value_at(time)`
"""

# Actions
LOAD = "OfxActionLoad"
UNLOAD = "OfxActionUnload"
DESCRIBE = "OfxActionDescribe"
DESCRIBE_IN_CONTEXT = "OfxImageEffectActionDescribeInContext"
CREATE_INSTANCE = "OfxActionCreateInstance"
DESTROY_INSTANCE = "OfxActionDestroyInstance"
GET_REGION_OF_DEFINITION = "OfxImageEffectActionGetRegionOfDefinition"
GET_FRAMES_NEEDED = "OfxImageEffectActionGetFramesNeeded"
IS_IDENTITY = "OfxImageEffectActionIsIdentity"
BEGIN_SEQUENCE_RENDER = "OfxImageEffectActionBeginSequenceRender"
RENDER = "OfxImageEffectActionRender"
END_SEQUENCE_RENDER = "OfxImageEffectActionEndSequenceRender"

# Status codes
STAT_OK = 0
STAT_FAILED = 1
STAT_REPLY_DEFAULT = 14

# Properties
LABEL = "OfxPropLabel"
NAME = "OfxPropName"
TIME = "OfxPropTime"
GROUPING = "OfxImageEffectPluginPropGrouping"
SUPPORTED_CONTEXTS = "OfxImageEffectPropSupportedContexts"
SUPPORTED_PIXEL_DEPTHS = "OfxImageEffectPropSupportedPixelDepths"
SUPPORTED_COMPONENTS = "OfxImageEffectPropSupportedComponents"
SUPPORTS_TILES = "OfxImageEffectPropSupportsTiles"
SUPPORTS_MULTI_RESOLUTION = "OfxImageEffectPropSupportsMultiResolution"
TEMPORAL_CLIP_ACCESS = "OfxImageEffectPropTemporalClipAccess"
RENDER_THREAD_SAFETY = "OfxImageEffectPluginRenderThreadSafety"
CONTEXT = "OfxImageEffectPropContext"
FRAME_RANGE = "OfxImageEffectPropFrameRange"
FRAME_RATE = "OfxImageEffectPropFrameRate"
RENDER_SCALE = "OfxImageEffectPropRenderScale"
REGION_OF_DEFINITION = "OfxImageEffectPropRegionOfDefinition"
PREMULTIPLICATION = "OfxImageEffectPropPreMultiplication"
CONNECTED = "OfxImageClipPropConnected"
OPTIONAL = "OfxImageClipPropOptional"
IS_MASK = "OfxImageClipPropIsMask"
FRAMES_NEEDED_PREFIX = "OfxImageClipPropFrameRange_"  # + clip name

# Values
CONTEXT_FILTER = "OfxImageEffectContextFilter"
RENDER_INSTANCE_SAFE = "OfxImageEffectRenderInstanceSafe"
BIT_DEPTH_FLOAT = "OfxBitDepthFloat"
COMPONENT_RGBA = "OfxImageComponentRGBA"
COMPONENT_ALPHA = "OfxImageComponentAlpha"
OPAQUE = "OfxImageOpaque"
PREMULTIPLIED = "OfxImagePreMultiplied"
UNPREMULTIPLIED = "OfxImageUnPreMultiplied"

# Parameters
PARAM_INTEGER = "OfxParamTypeInteger"
PARAM_DOUBLE = "OfxParamTypeDouble"
PARAM_BOOLEAN = "OfxParamTypeBoolean"
PARAM_CHOICE = "OfxParamTypeChoice"
PARAM_STRING = "OfxParamTypeString"
PARAM_DEFAULT = "OfxParamPropDefault"
PARAM_MIN = "OfxParamPropMin"
PARAM_MAX = "OfxParamPropMax"
PARAM_HINT = "OfxParamPropHint"
PARAM_ANIMATES = "OfxParamPropAnimates"
PARAM_CHOICE_OPTION = "OfxParamPropChoiceOption"
PARAM_STRING_MODE = "OfxParamPropStringMode"
STRING_IS_FILE_PATH = "OfxParamStringIsFilePath"
STRING_IS_SINGLE_LINE = "OfxParamStringIsSingleLine"
