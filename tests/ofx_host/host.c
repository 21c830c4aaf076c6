/* A small OpenFX host for testing LipSync.ofx the way a host drives a plug-in: it dlopens the binary,
 * describes it in the Filter and General contexts, makes an instance in one of them and renders the frames
 * given, in that order, checking the rules a host relies on:
 *
 * - images are fetched only in the render action, and only at frames GetFramesNeeded declared for the
 *   frame being rendered (per clip);
 * - progress starts and ends in pairs.
 *
 * Images are raw float32 files, rows bottom-up as OFX holds them: DIR/<frame>.raw, RGBA for the Source,
 * one alpha channel for the Mask (an alpha-only clip). Source rows are handed over padded, so that a plug-in
 * ignoring the row bytes fails. With --depth byte or short the host converts them (clamped, rounded) and
 * hands over that depth on every clip. Usage:
 *
 *   ofx_host BINARY --context filter|general --out DIR [--fps F] [--range FIRST LAST] [--depth byte|short|float]
 *            --source SCALE WIDTH HEIGHT DIR [--source ...] [--mask SCALE WIDTH HEIGHT DIR ...]
 *            [--param NAME=VALUE ...] STEP...
 *   STEP: render:FRAME[@SCALE]  press:PARAM (a push button)  set:NAME=VALUE (a user's edit)
 *         abort-after:N (the next render's abort turns true after N progress updates)  purge (low memory)
 *
 * It prints what it saw, one fact a line (describe, param, needed, fetch, identity, rendered, failed,
 * progress, message), writes each rendered frame to OUT/<frame>@<scale>.raw (RGBA at the depth handed
 * over, rows bottom-up) and exits 1 on a broken rule. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../nodes/ofx/ofx_api.h"

#define MAX_SCALES 4
#define ROW_PADDING 16

static int violations;

static void violation(const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("violation: ");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    violations++;
}

/* ------------------------------------------------------------------------------------- properties */

typedef struct Value {
    int i;
    double d;
    char *s;
    void *p;
} Value;

typedef struct Prop {
    char *name;
    char type; /* i, d, s, p */
    int count;
    Value *values;
} Prop;

struct OfxPropertySetStruct {
    Prop *props;
    int count;
};
typedef struct OfxPropertySetStruct PropSet;

static Prop *find(PropSet *set, const char *name) {
    for (int i = 0; i < set->count; i++)
        if (strcmp(set->props[i].name, name) == 0) return &set->props[i];
    return NULL;
}

static Value *slot(PropSet *set, const char *name, char type, int index) {
    Prop *prop = find(set, name);
    if (!prop) {
        set->props = realloc(set->props, (size_t)(set->count + 1) * sizeof *set->props);
        prop = &set->props[set->count++];
        *prop = (Prop){strdup(name), type, 0, NULL};
    }
    prop->type = type;
    if (index >= prop->count) {
        prop->values = realloc(prop->values, (size_t)(index + 1) * sizeof *prop->values);
        memset(prop->values + prop->count, 0, (size_t)(index + 1 - prop->count) * sizeof *prop->values);
        prop->count = index + 1;
    }
    return &prop->values[index];
}

static Value *got(PropSet *set, const char *name, char type, int index, OfxStatus *status) {
    Prop *prop = find(set, name);
    if (!prop) {
        *status = kOfxStatErrUnknown;
        return NULL;
    }
    if (prop->type != type) {
        violation("property %s read as %c, it is %c", name, type, prop->type);
        *status = kOfxStatErrValue;
        return NULL;
    }
    if (index < 0 || index >= prop->count) {
        *status = kOfxStatErrBadIndex;
        return NULL;
    }
    *status = kOfxStatOK;
    return &prop->values[index];
}

static OfxStatus set_pointer(PropSet *set, const char *name, int index, void *value) {
    slot(set, name, 'p', index)->p = value;
    return kOfxStatOK;
}
static OfxStatus set_string(PropSet *set, const char *name, int index, const char *value) {
    Value *v = slot(set, name, 's', index);
    free(v->s);
    v->s = strdup(value);
    return kOfxStatOK;
}
static OfxStatus set_double(PropSet *set, const char *name, int index, double value) {
    slot(set, name, 'd', index)->d = value;
    return kOfxStatOK;
}
static OfxStatus set_int(PropSet *set, const char *name, int index, int value) {
    slot(set, name, 'i', index)->i = value;
    return kOfxStatOK;
}
static OfxStatus set_pointers(PropSet *set, const char *name, int count, void *const *value) {
    for (int i = 0; i < count; i++) set_pointer(set, name, i, value[i]);
    return kOfxStatOK;
}
static OfxStatus set_strings(PropSet *set, const char *name, int count, const char *const *value) {
    for (int i = 0; i < count; i++) set_string(set, name, i, value[i]);
    return kOfxStatOK;
}
static OfxStatus set_doubles(PropSet *set, const char *name, int count, const double *value) {
    for (int i = 0; i < count; i++) set_double(set, name, i, value[i]);
    return kOfxStatOK;
}
static OfxStatus set_ints(PropSet *set, const char *name, int count, const int *value) {
    for (int i = 0; i < count; i++) set_int(set, name, i, value[i]);
    return kOfxStatOK;
}
static OfxStatus get_pointer(PropSet *set, const char *name, int index, void **value) {
    OfxStatus status;
    Value *v = got(set, name, 'p', index, &status);
    if (v) *value = v->p;
    return status;
}
static OfxStatus get_string(PropSet *set, const char *name, int index, char **value) {
    OfxStatus status;
    Value *v = got(set, name, 's', index, &status);
    if (v) *value = v->s;
    return status;
}
static OfxStatus get_double(PropSet *set, const char *name, int index, double *value) {
    OfxStatus status;
    Value *v = got(set, name, 'd', index, &status);
    if (v) *value = v->d;
    return status;
}
static OfxStatus get_int(PropSet *set, const char *name, int index, int *value) {
    OfxStatus status;
    Value *v = got(set, name, 'i', index, &status);
    if (v) *value = v->i;
    return status;
}
static OfxStatus get_pointers(PropSet *set, const char *name, int count, void **value) {
    for (int i = 0; i < count; i++) {
        OfxStatus status = get_pointer(set, name, i, &value[i]);
        if (status != kOfxStatOK) return status;
    }
    return kOfxStatOK;
}
static OfxStatus get_strings(PropSet *set, const char *name, int count, char **value) {
    for (int i = 0; i < count; i++) {
        OfxStatus status = get_string(set, name, i, &value[i]);
        if (status != kOfxStatOK) return status;
    }
    return kOfxStatOK;
}
static OfxStatus get_doubles(PropSet *set, const char *name, int count, double *value) {
    for (int i = 0; i < count; i++) {
        OfxStatus status = get_double(set, name, i, &value[i]);
        if (status != kOfxStatOK) return status;
    }
    return kOfxStatOK;
}
static OfxStatus get_ints(PropSet *set, const char *name, int count, int *value) {
    for (int i = 0; i < count; i++) {
        OfxStatus status = get_int(set, name, i, &value[i]);
        if (status != kOfxStatOK) return status;
    }
    return kOfxStatOK;
}
static OfxStatus reset(PropSet *set, const char *name) {
    Prop *prop = find(set, name);
    if (!prop) return kOfxStatErrUnknown;
    prop->count = 0;
    return kOfxStatOK;
}
static OfxStatus dimension(PropSet *set, const char *name, int *count) {
    Prop *prop = find(set, name);
    if (!prop) return kOfxStatErrUnknown;
    *count = prop->count;
    return kOfxStatOK;
}

static const OfxPropertySuiteV1 property_suite = {
    set_pointer,  set_string,  set_double,  set_int,  set_pointers, set_strings, set_doubles, set_ints,  get_pointer,
    get_string,   get_double,  get_int,     get_pointers, get_strings, get_doubles, get_ints,  reset,  dimension,
};

static const char *text(PropSet *set, const char *name) {
    char *value = NULL;
    return get_string(set, name, 0, &value) == kOfxStatOK ? value : "";
}

static int number(PropSet *set, const char *name) {
    int value = 0;
    return get_int(set, name, 0, &value) == kOfxStatOK ? value : 0;
}

/* ---------------------------------------------------------------------------------- effect objects */

typedef struct Frames {
    double scale;
    int width, height;
    const char *folder;
} Frames;

struct OfxImageClipStruct {
    char name[64];
    PropSet props;
    Frames frames[MAX_SCALES];
    int scales, channels;
    double needed[2]; /* what GetFramesNeeded declared for the frame being rendered */
};
typedef struct OfxImageClipStruct Clip;

struct OfxParamStruct {
    char name[64], type[64];
    PropSet props;
    int integer;
    double real;
    char *string;
};
typedef struct OfxParamStruct Param;

struct OfxImageEffectStruct {
    PropSet props;
    Clip clips[8];
    int clip_count;
    Param params[64];
    int param_count;
};
typedef struct OfxImageEffectStruct Effect;

static Clip *clip_named(Effect *effect, const char *name) {
    for (int i = 0; i < effect->clip_count; i++)
        if (strcmp(effect->clips[i].name, name) == 0) return &effect->clips[i];
    return NULL;
}

static Param *param_named(Effect *effect, const char *name) {
    for (int i = 0; i < effect->param_count; i++)
        if (strcmp(effect->params[i].name, name) == 0) return &effect->params[i];
    return NULL;
}

/* What the host is doing now: images may be fetched only inside render. */
static const char *current_action = "";
static double current_scale = 1;
static int abort_after = -1, progress_updates, progress_open;
static const char *depth = kOfxBitDepthFloat;
static int depth_bytes = 4;
static char *output_pixels;

/* One float as the host's depth at `to`. */
static void store(char *to, float value) {
    if (depth_bytes == 4) {
        *(float *)to = value;
        return;
    }
    value = value < 0 ? 0 : value > 1 ? 1 : value;
    if (depth_bytes == 2)
        *(unsigned short *)to = (unsigned short)(value * 65535.0f + 0.5f);
    else
        *(unsigned char *)to = (unsigned char)(value * 255.0f + 0.5f);
}

static OfxStatus get_property_set(OfxImageEffectHandle effect, OfxPropertySetHandle *set) {
    *set = &effect->props;
    return kOfxStatOK;
}

static OfxStatus get_param_set(OfxImageEffectHandle effect, OfxParamSetHandle *set) {
    *set = (OfxParamSetHandle)effect;
    return kOfxStatOK;
}

static OfxStatus clip_define(OfxImageEffectHandle effect, const char *name, OfxPropertySetHandle *set) {
    Clip *clip = &effect->clips[effect->clip_count++];
    memset(clip, 0, sizeof *clip);
    snprintf(clip->name, sizeof clip->name, "%s", name);
    *set = &clip->props;
    return kOfxStatOK;
}

static OfxStatus clip_get_handle(OfxImageEffectHandle effect, const char *name, OfxImageClipHandle *handle,
                                 OfxPropertySetHandle *set) {
    Clip *clip = clip_named(effect, name);
    if (!clip) return kOfxStatErrBadHandle;
    *handle = clip;
    if (set) *set = &clip->props;
    return kOfxStatOK;
}

static OfxStatus clip_get_property_set(OfxImageClipHandle clip, OfxPropertySetHandle *set) {
    *set = &clip->props;
    return kOfxStatOK;
}

static const Frames *frames_at(const Clip *clip, double scale) {
    for (int i = 0; i < clip->scales; i++)
        if (fabs(clip->frames[i].scale - scale) < 1e-9) return &clip->frames[i];
    return NULL;
}

static OfxStatus clip_get_image(OfxImageClipHandle clip, OfxTime time, const OfxRectD *region, OfxPropertySetHandle *out) {
    (void)region;
    printf("fetch %s %g %g %s\n", clip->name, time, current_scale, current_action);
    if (strcmp(current_action, kOfxImageEffectActionRender) != 0)
        violation("%s frame %g fetched in %s", clip->name, time, current_action);
    const Frames *frames;
    char *pixels;
    int row_bytes;
    if (strcmp(clip->name, kOfxImageEffectOutputClipName) == 0) {
        frames = frames_at(clip, current_scale);
        pixels = output_pixels;
        row_bytes = frames->width * 4 * depth_bytes;
    } else {
        if (time < clip->needed[0] || time > clip->needed[1])
            violation("%s frame %g fetched, GetFramesNeeded declared %g-%g", clip->name, time, clip->needed[0],
                      clip->needed[1]);
        frames = frames_at(clip, current_scale);
        if (!frames) return kOfxStatFailed;
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.raw", frames->folder, (int)time);
        FILE *file = fopen(path, "rb");
        if (!file) return kOfxStatFailed;
        size_t row = (size_t)frames->width * clip->channels;
        row_bytes = (int)(row * depth_bytes) + ROW_PADDING;
        pixels = calloc((size_t)frames->height, (size_t)row_bytes);
        float *values = malloc(row * sizeof *values);
        for (int y = 0; y < frames->height; y++) {
            if (fread(values, sizeof *values, row, file) != row) violation("short %s", path);
            for (size_t v = 0; v < row; v++) store(pixels + (size_t)y * row_bytes + v * depth_bytes, values[v]);
        }
        free(values);
        fclose(file);
    }
    PropSet *image = calloc(1, sizeof *image);
    int bounds[4] = {0, 0, frames->width, frames->height};
    set_pointer(image, kOfxImagePropData, 0, pixels);
    set_ints(image, kOfxImagePropBounds, 4, bounds);
    set_int(image, kOfxImagePropRowBytes, 0, row_bytes);
    set_string(image, kOfxImageEffectPropPixelDepth, 0, depth);
    set_string(image, kOfxImageEffectPropComponents, 0, text(&clip->props, kOfxImageEffectPropComponents));
    set_string(image, kOfxImageEffectPropPreMultiplication, 0, text(&clip->props, kOfxImageEffectPropPreMultiplication));
    set_double(image, kOfxImageEffectPropRenderScale, 0, current_scale);
    set_double(image, kOfxImageEffectPropRenderScale, 1, current_scale);
    set_int(image, "lipsync.test:owned", 0, pixels != output_pixels);
    *out = image;
    return kOfxStatOK;
}

static OfxStatus clip_release_image(OfxPropertySetHandle image) {
    void *pixels = NULL;
    get_pointer(image, kOfxImagePropData, 0, &pixels);
    if (number(image, "lipsync.test:owned")) free(pixels);
    for (int i = 0; i < image->count; i++) {
        for (int v = 0; v < image->props[i].count; v++) free(image->props[i].values[v].s);
        free(image->props[i].values);
        free(image->props[i].name);
    }
    free(image->props);
    free(image);
    return kOfxStatOK;
}

static OfxStatus clip_region(OfxImageClipHandle clip, OfxTime time, OfxRectD *bounds) {
    (void)time;
    const Frames *full = frames_at(clip, 1.0);
    if (!full) return kOfxStatFailed;
    *bounds = (OfxRectD){0, 0, full->width, full->height};
    return kOfxStatOK;
}

static int aborted(OfxImageEffectHandle effect) {
    (void)effect;
    return abort_after >= 0 && progress_updates >= abort_after;
}

static const OfxImageEffectSuiteV1 image_effect_suite = {
    get_property_set, get_param_set, clip_define, clip_get_handle, clip_get_property_set, clip_get_image,
    clip_release_image, clip_region, aborted, NULL, NULL, NULL, NULL,
};

/* ---------------------------------------------------------------------------------------- params */

static OfxStatus param_define(OfxParamSetHandle set, const char *type, const char *name, OfxPropertySetHandle *props) {
    Effect *effect = (Effect *)set;
    Param *param = &effect->params[effect->param_count++];
    memset(param, 0, sizeof *param);
    snprintf(param->name, sizeof param->name, "%s", name);
    snprintf(param->type, sizeof param->type, "%s", type);
    *props = &param->props;
    return kOfxStatOK;
}

static OfxStatus param_get_handle(OfxParamSetHandle set, const char *name, OfxParamHandle *handle,
                                  OfxPropertySetHandle *props) {
    Param *param = param_named((Effect *)set, name);
    if (!param) return kOfxStatErrUnknown;
    *handle = param;
    if (props) *props = &param->props;
    return kOfxStatOK;
}

static int is_real(const Param *param) { return strcmp(param->type, kOfxParamTypeDouble) == 0; }
static int is_text(const Param *param) { return strcmp(param->type, kOfxParamTypeString) == 0; }

static OfxStatus read_value(Param *param, va_list args) {
    if (is_real(param))
        *va_arg(args, double *) = param->real;
    else if (is_text(param))
        *va_arg(args, char **) = param->string;
    else
        *va_arg(args, int *) = param->integer;
    return kOfxStatOK;
}

static OfxStatus get_value(OfxParamHandle param, ...) {
    va_list args;
    va_start(args, param);
    OfxStatus status = read_value(param, args);
    va_end(args);
    return status;
}

/* Parameters are constant over time here: the value at any time is the value. */
static OfxStatus get_value_at_time(OfxParamHandle param, OfxTime time, ...) {
    va_list args;
    va_start(args, time);
    OfxStatus status = read_value(param, args);
    va_end(args);
    return status;
}

static OfxStatus set_value(OfxParamHandle param, ...) {
    va_list args;
    va_start(args, param);
    if (is_real(param))
        param->real = va_arg(args, double);
    else if (is_text(param)) {
        free(param->string);
        param->string = strdup(va_arg(args, char *));
    } else
        param->integer = va_arg(args, int);
    va_end(args);
    printf("param-set %s\n", param->name);
    return kOfxStatOK;
}

static const OfxParameterSuiteV1 parameter_suite = {
    param_define, param_get_handle, NULL, NULL, get_value, get_value_at_time, NULL, NULL, set_value,
    NULL,         NULL,             NULL, NULL, NULL,      NULL,              NULL, NULL, NULL,
};

/* ------------------------------------------------------------------------------ progress, messages */

static OfxStatus progress_start(void *effect, const char *label) {
    (void)effect;
    if (progress_open) violation("progress started twice");
    progress_open = 1;
    printf("progress start %s\n", label);
    return kOfxStatOK;
}

static OfxStatus progress_update(void *effect, double done) {
    (void)effect;
    if (!progress_open) violation("progress update outside start/end");
    if (done < 0 || done > 1) violation("progress %g outside 0..1", done);
    progress_updates++;
    return kOfxStatOK;
}

static OfxStatus progress_end(void *effect) {
    (void)effect;
    if (!progress_open) violation("progress ended twice");
    progress_open = 0;
    printf("progress end after %d updates\n", progress_updates);
    return kOfxStatOK;
}

static const OfxProgressSuiteV1 progress_suite = {progress_start, progress_update, progress_end};

static OfxStatus message(void *handle, const char *type, const char *id, const char *format, ...) {
    (void)handle, (void)id;
    char text[4096];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    printf("message %s %s\n", type, text);
    return kOfxStatOK;
}

static const OfxMessageSuiteV1 message_suite = {message};

static PropSet host_props;

static const void *fetch_suite(OfxPropertySetHandle host, const char *name, int version) {
    if (host != &host_props) violation("fetchSuite with another host handle");
    if (version != 1) return NULL;
    if (strcmp(name, kOfxPropertySuite) == 0) return &property_suite;
    if (strcmp(name, kOfxImageEffectSuite) == 0) return &image_effect_suite;
    if (strcmp(name, kOfxParameterSuite) == 0) return &parameter_suite;
    if (strcmp(name, kOfxProgressSuite) == 0) return &progress_suite;
    if (strcmp(name, kOfxMessageSuite) == 0) return &message_suite;
    return NULL;
}

/* ------------------------------------------------------------------------------------------ main */

static OfxPlugin *plugin;

static OfxStatus call(const char *action, void *handle, PropSet *in, PropSet *out) {
    current_action = action;
    OfxStatus status = plugin->mainEntry(action, handle, in, out);
    current_action = "";
    return status;
}

static void describe_params(const char *context, Effect *effect) {
    for (int i = 0; i < effect->clip_count; i++) {
        Clip *clip = &effect->clips[i];
        printf("clip %s %s optional=%d mask=%d components=", context, clip->name,
               number(&clip->props, kOfxImageClipPropOptional), number(&clip->props, kOfxImageClipPropIsMask));
        Prop *components = find(&clip->props, kOfxImageEffectPropSupportedComponents);
        for (int c = 0; components && c < components->count; c++) printf("%s%s", c ? "," : "", components->values[c].s);
        printf("\n");
    }
    for (int i = 0; i < effect->param_count; i++) {
        Param *param = &effect->params[i];
        printf("param %s %s %s animates=%d secret=%d\n", context, param->name, param->type,
               number(&param->props, kOfxParamPropAnimates), number(&param->props, kOfxParamPropSecret));
    }
}

static void instance_from(Effect *instance, const Effect *descriptor) {
    *instance = *descriptor; /* the descriptor's property sets are shared, read only from here on */
    for (int i = 0; i < instance->param_count; i++) {
        Param *param = &instance->params[i];
        PropSet *defaults = &param->props;
        if (is_real(param))
            get_double(defaults, kOfxParamPropDefault, 0, &param->real);
        else if (is_text(param))
            param->string = strdup(text(defaults, kOfxParamPropDefault));
        else if (find(defaults, kOfxParamPropDefault))
            param->integer = number(defaults, kOfxParamPropDefault);
    }
    memset(&instance->props, 0, sizeof instance->props);
}

/* NAME=VALUE: a choice by its index. */
static int set_param(Effect *effect, char *assignment) {
    char *equals = strchr(assignment, '=');
    if (!equals) return 0;
    *equals = 0;
    Param *param = param_named(effect, assignment);
    *equals = '=';
    if (!param) return 0;
    if (is_real(param))
        param->real = atof(equals + 1);
    else if (is_text(param)) {
        free(param->string);
        param->string = strdup(equals + 1);
    } else
        param->integer = atoi(equals + 1);
    return 1;
}

static void instance_changed(Effect *instance, const char *name, double time) {
    PropSet in = {0};
    set_string(&in, kOfxPropType, 0, kOfxTypeParameter);
    set_string(&in, kOfxPropName, 0, name);
    set_string(&in, kOfxPropChangeReason, 0, kOfxChangeUserEdited);
    set_double(&in, kOfxPropTime, 0, time);
    set_double(&in, kOfxImageEffectPropRenderScale, 0, 1);
    set_double(&in, kOfxImageEffectPropRenderScale, 1, 1);
    call(kOfxActionInstanceChanged, instance, &in, NULL);
}

static void add_frames(Clip *clip, char **argv) {
    Frames *frames = &clip->frames[clip->scales++];
    frames->scale = atof(argv[0]);
    frames->width = atoi(argv[1]);
    frames->height = atoi(argv[2]);
    frames->folder = argv[3];
}

static int save(const char *folder, int frame, double scale, const char *pixels, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d@%g.raw", folder, frame, scale);
    FILE *file = fopen(path, "wb");
    int ok = file && fwrite(pixels, 1, bytes, file) == bytes;
    if (file) ok = fclose(file) == 0 && ok;
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: see tests/ofx_host/host.c\n");
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*count)(void) = (int (*)(void))dlsym(library, "OfxGetNumberOfPlugins");
    OfxPlugin *(*get)(int) = (OfxPlugin * (*)(int)) dlsym(library, "OfxGetPlugin");
    if (!count || !get) {
        fprintf(stderr, "not an OFX binary: OfxGetNumberOfPlugins/OfxGetPlugin missing\n");
        return 2;
    }
    plugin = get(0);
    printf("plugins %d\nplugin %s %s %d %u.%u\n", count(), plugin->pluginIdentifier, plugin->pluginApi,
           plugin->apiVersion, plugin->pluginVersionMajor, plugin->pluginVersionMinor);
    if (strcmp(plugin->pluginApi, kOfxImageEffectPluginApi) != 0 || plugin->apiVersion != 1) return 2;

    const char *context = kOfxImageEffectContextFilter, *out_folder = ".";
    double fps = 25, range[2] = {0, 0};
    Clip sources = {0}, masks = {0};
    char **overrides = calloc((size_t)argc, sizeof *overrides);
    int override_count = 0, first_step = argc;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--context") == 0 && i + 1 < argc)
            context = strcmp(argv[++i], "general") == 0 ? kOfxImageEffectContextGeneral : kOfxImageEffectContextFilter;
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_folder = argv[++i];
        else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
            i++;
            int byte = strcmp(argv[i], "byte") == 0, short_ = strcmp(argv[i], "short") == 0;
            depth = byte ? kOfxBitDepthByte : short_ ? kOfxBitDepthShort : kOfxBitDepthFloat;
            depth_bytes = byte ? 1 : short_ ? 2 : 4;
        } else if (strcmp(argv[i], "--fps") == 0 && i + 1 < argc)
            fps = atof(argv[++i]);
        else if (strcmp(argv[i], "--range") == 0 && i + 2 < argc) {
            range[0] = atof(argv[++i]);
            range[1] = atof(argv[++i]);
        } else if (strcmp(argv[i], "--source") == 0 && i + 4 < argc) {
            add_frames(&sources, argv + i + 1);
            i += 4;
        } else if (strcmp(argv[i], "--mask") == 0 && i + 4 < argc) {
            add_frames(&masks, argv + i + 1);
            i += 4;
        } else if (strcmp(argv[i], "--param") == 0 && i + 1 < argc)
            overrides[override_count++] = argv[++i];
        else {
            first_step = i;
            break;
        }
    }

    static OfxHost host = {&host_props, fetch_suite};
    set_string(&host_props, kOfxPropName, 0, "org.lipsync.testhost");
    plugin->setHost(&host);
    if (call(kOfxActionLoad, NULL, NULL, NULL) != kOfxStatOK) return 3;
    static Effect descriptor, contexts[2], instance;
    if (call(kOfxActionDescribe, &descriptor, NULL, NULL) != kOfxStatOK) return 3;
    Prop *supported = find(&descriptor.props, kOfxImageEffectPropSupportedContexts);
    for (int c = 0; supported && c < supported->count; c++) printf("context %s\n", supported->values[c].s);
    printf("threadsafety %s tiles %d temporal %d\n", text(&descriptor.props, kOfxImageEffectPluginRenderThreadSafety),
           number(&descriptor.props, kOfxImageEffectPropSupportsTiles),
           number(&descriptor.props, kOfxImageEffectPropTemporalClipAccess));
    const char *names[2] = {kOfxImageEffectContextFilter, kOfxImageEffectContextGeneral};
    Effect *chosen = NULL;
    for (int c = 0; c < 2; c++) {
        PropSet in = {0};
        set_string(&in, kOfxImageEffectPropContext, 0, names[c]);
        if (call(kOfxImageEffectActionDescribeInContext, &contexts[c], &in, NULL) != kOfxStatOK) return 3;
        describe_params(names[c], &contexts[c]);
        if (strcmp(names[c], context) == 0) chosen = &contexts[c];
    }

    instance_from(&instance, chosen);
    for (int i = 0; i < override_count; i++) {
        if (!set_param(&instance, overrides[i])) {
            fprintf(stderr, "no parameter: %s\n", overrides[i]);
            return 2;
        }
    }
    Clip *source = clip_named(&instance, kOfxImageEffectSimpleSourceClipName);
    Clip *mask = clip_named(&instance, "Mask");
    Clip *output = clip_named(&instance, kOfxImageEffectOutputClipName);
    if (!source || !mask || !output) return 3;
    memcpy(source->frames, sources.frames, sizeof sources.frames);
    source->scales = sources.scales;
    source->channels = 4;
    memcpy(mask->frames, masks.frames, sizeof masks.frames);
    mask->scales = masks.scales;
    mask->channels = 1;
    memcpy(output->frames, sources.frames, sizeof sources.frames);
    output->scales = sources.scales;
    output->channels = 4;
    for (Clip *clip = instance.clips; clip < instance.clips + instance.clip_count; clip++) {
        PropSet copy = {0}; /* the instance's own clip properties, the descriptor's kept */
        for (int p = 0; p < clip->props.count; p++)
            for (int v = 0; v < clip->props.props[p].count; v++) {
                Prop *prop = &clip->props.props[p];
                if (prop->type == 's') set_string(&copy, prop->name, v, prop->values[v].s);
                if (prop->type == 'i') set_int(&copy, prop->name, v, prop->values[v].i);
            }
        clip->props = copy;
        int connected = clip->scales > 0;
        set_int(&clip->props, kOfxImageClipPropConnected, 0, connected);
        set_doubles(&clip->props, kOfxImageEffectPropFrameRange, 2, range);
        set_double(&clip->props, kOfxImageEffectPropFrameRate, 0, fps);
        set_string(&clip->props, kOfxImageEffectPropPixelDepth, 0, depth);
        set_string(&clip->props, kOfxImageEffectPropComponents, 0,
                   clip == mask ? kOfxImageComponentAlpha : kOfxImageComponentRGBA);
        set_string(&clip->props, kOfxImageEffectPropPreMultiplication, 0,
                   clip == mask ? "OfxImageOpaque" : kOfxImagePreMultiplied);
    }
    set_string(&instance.props, kOfxImageEffectPropContext, 0, context);
    if (call(kOfxActionCreateInstance, &instance, NULL, NULL) != kOfxStatOK) return 3;

    PropSet sequence = {0};
    set_doubles(&sequence, kOfxImageEffectPropFrameRange, 2, range);
    set_double(&sequence, kOfxImageEffectPropRenderScale, 0, 1);
    set_double(&sequence, kOfxImageEffectPropRenderScale, 1, 1);
    call(kOfxImageEffectActionBeginSequenceRender, &instance, &sequence, NULL);
    for (int i = first_step; i < argc; i++) {
        if (strncmp(argv[i], "abort-after:", 12) == 0) {
            abort_after = progress_updates + atoi(argv[i] + 12);
            continue;
        }
        if (strncmp(argv[i], "press:", 6) == 0) {
            instance_changed(&instance, argv[i] + 6, range[0]);
            printf("pressed %s\n", argv[i] + 6);
            continue;
        }
        if (strcmp(argv[i], "purge") == 0) {
            call(kOfxActionPurgeCaches, &instance, NULL, NULL);
            printf("purged\n");
            continue;
        }
        if (strncmp(argv[i], "set:", 4) == 0) {
            if (!set_param(&instance, argv[i] + 4)) {
                fprintf(stderr, "no parameter: %s\n", argv[i] + 4);
                return 2;
            }
            *strchr(argv[i], '=') = 0;
            instance_changed(&instance, argv[i] + 4, range[0]);
            continue;
        }
        if (strncmp(argv[i], "render:", 7) != 0) {
            fprintf(stderr, "unknown step %s\n", argv[i]);
            return 2;
        }
        double time = atof(argv[i] + 7), scale = 1;
        char *at = strchr(argv[i], '@');
        if (at) scale = atof(at + 1);
        const Frames *frames = frames_at(source, scale);
        if (!frames) return 2;
        PropSet in = {0}, out = {0};
        set_double(&in, kOfxPropTime, 0, time);
        set_double(&in, kOfxImageEffectPropRenderScale, 0, scale);
        set_double(&in, kOfxImageEffectPropRenderScale, 1, scale);
        if (call(kOfxImageEffectActionGetRegionOfDefinition, &instance, &in, &out) != kOfxStatOK) return 3;
        double rod[4] = {0};
        get_doubles(&out, kOfxImageEffectPropRegionOfDefinition, 4, rod);
        printf("rod %g %g %g %g %g\n", time, rod[0], rod[1], rod[2], rod[3]);
        PropSet needed = {0};
        OfxStatus status = call(kOfxImageEffectActionGetFramesNeeded, &instance, &in, &needed);
        for (Clip *clip = instance.clips; clip < instance.clips + instance.clip_count; clip++) {
            char name[128];
            snprintf(name, sizeof name, "%s%.64s", kOfxImageClipPropFrameRange_, clip->name);
            clip->needed[0] = clip->needed[1] = time; /* the default: the frame itself */
            if (status == kOfxStatOK) get_doubles(&needed, name, 2, clip->needed);
            if (clip != output) printf("needed %g %s %g %g\n", time, clip->name, clip->needed[0], clip->needed[1]);
        }
        PropSet identity = {0};
        if (call(kOfxImageEffectActionIsIdentity, &instance, &in, &identity) == kOfxStatOK) {
            double at_time = 0;
            get_double(&identity, kOfxPropTime, 0, &at_time);
            printf("identity %g %s %g\n", time, text(&identity, kOfxPropName), at_time);
            continue;
        }
        size_t values = (size_t)frames->width * frames->height * 4;
        output_pixels = malloc(values * depth_bytes);
        memset(output_pixels, 0xAB, values * depth_bytes); /* a pixel left unwritten shows */
        int window[4] = {0, 0, frames->width, frames->height};
        set_ints(&in, "OfxImageEffectPropRenderWindow", 4, window);
        set_string(&in, "OfxImageEffectPropFieldToRender", 0, "OfxImageFieldNone");
        current_scale = scale;
        status = call(kOfxImageEffectActionRender, &instance, &in, NULL);
        current_scale = 1;
        abort_after = -1;
        if (status == kOfxStatOK) {
            if (!save(out_folder, (int)time, scale, output_pixels, values * depth_bytes)) return 4;
            printf("rendered %g %g\n", time, scale);
        } else {
            printf("failed %g %g %d\n", time, scale, status);
        }
        free(output_pixels);
        output_pixels = NULL;
    }
    call(kOfxImageEffectActionEndSequenceRender, &instance, &sequence, NULL);
    if (call(kOfxActionDestroyInstance, &instance, NULL, NULL) != kOfxStatOK) return 3;
    OfxStatus unloaded = call(kOfxActionUnload, NULL, NULL, NULL);
    if (unloaded != kOfxStatOK && unloaded != kOfxStatReplyDefault) return 3;
    if (progress_open) violation("progress left open");
    printf("violations %d\n", violations);
    return violations ? 1 : 0;
}
