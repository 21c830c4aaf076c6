/* LipSync.ofx: the LipSync dub as a native OpenFX image effect (Filter and General contexts).
 *
 * The host loads only this C code. The dub runs in a worker process per node (nodes/ofx/server.py, in the
 * core's Python), spoken to in JSON lines over a socket: a crash or a hang in the model cannot take the host
 * down, and no Python is embedded in it. What travels, and why (the face track is smoothed over the whole
 * shot, and the model renders cells of frames):
 *
 * - Analysis, once per shot: on the first render, or the first after Analyse is pressed or the Source's
 *   frame range or size changes, the render fetches every Source (and Mask) frame of the clip's range, which
 *   GetFramesNeeded declared for exactly that case, writes them to a snapshot in the node's scratch folder
 *   and has the worker track the face, with the host's progress bar and abort.
 * - Every render after that fetches only its own frame: the worker renders its cell from the snapshot, at the
 *   analysis's size resized to the render scale's, and the plug-in keeps the host's own pixels outside the
 *   mask, to the bit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ofx_api.h"

typedef struct LipSyncParam {
    const char *name, *label, *hint, *type;
    int animates, is_file;
    double number_default;
    const char *string_default;
    int has_min;
    double min;
    int has_max;
    double max;
    const char *choices[8];
} LipSyncParam;

#include "params.h"

#define PLUGIN_ID "org.lipsync.dub"
#define SOURCE kOfxImageEffectSimpleSourceClipName
#define OUTPUT kOfxImageEffectOutputClipName
#define MASK "Mask"
#define ANALYSE "analyse"
#define ANALYSIS_RUN "analysis_run" /* secret: bumped by Analyse, so the host sees a change and renders again */
#define WORKER_GRACE_S 5

extern char **environ;

static OfxHost *host;
static const OfxPropertySuiteV1 *props;
static const OfxImageEffectSuiteV1 *effects;
static const OfxParameterSuiteV1 *params;
static const OfxProgressSuiteV1 *progress; /* optional in a host */
static const OfxMessageSuiteV1 *messages;  /* optional in a host */

typedef struct Text {
    char *data;
    size_t length, size;
    int failed; /* out of memory: the text is cut short and must not be sent */
} Text;

typedef struct Instance {
    pthread_mutex_t lock; /* one worker conversation at a time, whichever action asks */
    char scratch[PATH_MAX];
    pid_t worker;
    int socket;
    Text pending; /* bytes read from the worker past the last whole line */
    int snapshot; /* the last snapshot written (its id), 0: none */
    int snapshot_run, first, last; /* what it was taken for: Analyse count, Source frame range, size */
    OfxRectD rod;
    int width, height, bits, premultiplied; /* bits: the host's pixel depth, 8, 16 or 32 (float) */
    char *prepared; /* the prepare request the worker last answered, NULL: none */
    unsigned char *skip; /* per frame first..last: 1 where the frame passes Source through */
} Instance;

/* ------------------------------------------------------------------------------------------- text */

static void text_add(Text *text, const char *data, size_t length) {
    if (text->failed) return;
    if (text->length + length + 1 > text->size) {
        char *grown = realloc(text->data, (text->length + length + 1) * 2);
        if (!grown) {
            text->failed = 1;
            return;
        }
        text->data = grown;
        text->size = (text->length + length + 1) * 2;
    }
    memcpy(text->data + text->length, data, length);
    text->length += length;
    text->data[text->length] = 0;
}

static void text_printf(Text *text, const char *format, ...) {
    char buffer[512];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    if (length >= (int)sizeof buffer) length = sizeof buffer - 1; /* only numbers and names go through here */
    text_add(text, buffer, (size_t)length);
}

static void text_json_string(Text *text, const char *value) {
    text_add(text, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char escaped[2] = {'\\', (char)*c};
            text_add(text, escaped, 2);
        } else if (*c < 0x20) {
            text_printf(text, "\\u%04x", *c);
        } else {
            text_add(text, (const char *)c, 1);
        }
    }
    text_add(text, "\"", 1);
}

/* The worker's replies are JSON objects with a fixed shape (server.py): a key's number, string or list of
 * integers is found by its quoted name. */
static const char *json_value(const char *line, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *at = strstr(line, quoted);
    if (!at) return NULL;
    at += strlen(quoted);
    while (*at == ' ') at++;
    return at;
}

static int json_number(const char *line, const char *key, double *value) {
    const char *at = json_value(line, key);
    if (!at) return 0;
    char *end;
    *value = strtod(at, &end);
    return end != at;
}

static void json_string(const char *line, const char *key, char *out, size_t size) {
    const char *at = json_value(line, key);
    size_t n = 0;
    if (at && *at == '"') {
        for (at++; *at && *at != '"' && n + 1 < size; at++) {
            if (*at != '\\') {
                out[n++] = *at;
                continue;
            }
            at++;
            if (!*at) break;
            if (*at == 'u') { /* a control character (the worker sends UTF-8 text as it is) */
                out[n++] = '?';
                for (int i = 0; i < 4 && at[1]; i++) at++;
            } else {
                out[n++] = *at == 'n' || *at == 't' ? ' ' : *at;
            }
        }
    }
    out[n] = 0;
}

/* ----------------------------------------------------------------------------------------- errors */

static OfxStatus fail(OfxImageEffectHandle effect, const char *format, ...) {
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (messages)
        messages->message(effect, kOfxMessageError, PLUGIN_ID ".error", "LipSync: %s", message);
    else
        fprintf(stderr, "LipSync: %s\n", message);
    return kOfxStatFailed;
}

/* ----------------------------------------------------------------------------------------- worker */

/* The repository holding lipsync_core: $LIPSYNC_ROOT, else the folder above this bundle that has it (the
 * bundle is built inside the repository; a link to it from /usr/OFX/Plugins still resolves there), else
 * the repository the bundle was built in. */
static int repository(char *root, size_t size) {
    char probe[PATH_MAX + 64];
    const char *given = getenv("LIPSYNC_ROOT");
    if (given && *given) {
        snprintf(root, size, "%s", given);
        return 1;
    }
    Dl_info info;
    char path[PATH_MAX];
    if (dladdr((void *)&repository, &info) && info.dli_fname && realpath(info.dli_fname, path)) {
        for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/lipsync_core/__init__.py", path);
            if (access(probe, R_OK) == 0) {
                snprintf(root, size, "%s", path);
                return 1;
            }
        }
    }
    snprintf(probe, sizeof probe, "%s/lipsync_core/__init__.py", LIPSYNC_BUILD_ROOT);
    if (access(probe, R_OK) == 0) {
        snprintf(root, size, "%s", LIPSYNC_BUILD_ROOT);
        return 1;
    }
    return 0;
}

static void stop_worker(Instance *instance) {
    if (instance->worker <= 0) return;
    close(instance->socket); /* the worker ends when its stdin closes */
    instance->socket = -1;
    int status;
    for (int i = 0; i < WORKER_GRACE_S * 10; i++) {
        pid_t gone = waitpid(instance->worker, &status, WNOHANG);
        if (gone == instance->worker || (gone < 0 && errno == ECHILD)) goto done; /* ECHILD: the host reaped it */
        if (i == 10) kill(instance->worker, SIGTERM); /* busy in a render: stop it */
        usleep(100000);
    }
    kill(instance->worker, SIGKILL);
    waitpid(instance->worker, &status, 0); /* fails with ECHILD where the host reaps children itself */
done:
    instance->worker = 0;
    instance->pending.length = 0;
    instance->pending.failed = 0;
    free(instance->prepared);
    instance->prepared = NULL;
}

static OfxStatus start_worker(OfxImageEffectHandle effect, Instance *instance) {
    char root[PATH_MAX], python[PATH_MAX + 32], log[PATH_MAX + 16];
    if (!repository(root, sizeof root))
        return fail(effect, "cannot find the LipSync repository: set LIPSYNC_ROOT to it");
    const char *chosen = getenv("LIPSYNC_PYTHON");
    if (chosen && *chosen)
        snprintf(python, sizeof python, "%s", chosen);
    else
        snprintf(python, sizeof python, "%s/.venv/bin/python", root);
    if (access(python, X_OK) != 0)
        return fail(effect, "no Python for LipSync at %s: set LIPSYNC_PYTHON, or run `make setup` in %s", python, root);
    snprintf(log, sizeof log, "%s/worker.log", instance->scratch);
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int pair[2];
    if (logfd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        if (logfd >= 0) close(logfd);
        return fail(effect, "cannot start the worker: %s", strerror(errno));
    }
    const char *boot = "import sys; sys.path.insert(0, sys.argv[1]); from nodes.ofx.server import main; "
                       "sys.exit(main(sys.argv[2:]))";
    char *argv[] = {python, "-I", "-u", "-c", (char *)boot, root, instance->scratch, NULL};
    size_t count = 0;
    for (char **e = environ; *e; e++) count++;
    char **env = calloc(count + 1, sizeof *env);
    size_t kept = 0;
    for (char **e = environ; env && *e; e++)
        if (strncmp(*e, "PYTHON", 6) != 0) env[kept++] = *e; /* the host's own Python settings stay out */
    /* posix_spawn, not fork: a host's address space is large and its threads many. The worker gets no blocked
     * signals and SIGTERM's default action, whatever the host's render thread has. */
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t none, term;
    sigemptyset(&none);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pair[1], 0);
    posix_spawn_file_actions_adddup2(&actions, pair[1], 1);
    posix_spawn_file_actions_adddup2(&actions, logfd, 2);
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &term);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int error = env ? posix_spawn(&pid, python, &actions, &attributes, argv, env) : ENOMEM;
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    close(pair[1]);
    close(logfd);
    if (error) {
        close(pair[0]);
        return fail(effect, "cannot start %s: %s", python, strerror(error));
    }
    instance->worker = pid;
    instance->socket = pair[0];
    instance->pending.length = 0;
    return kOfxStatOK;
}

static int send_all(int socket, const char *data, size_t length) {
    while (length) {
        ssize_t sent = send(socket, data, length, MSG_NOSIGNAL); /* a dead worker must not SIGPIPE the host */
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) return 0;
        data += sent;
        length -= (size_t)sent;
    }
    return 1;
}

/* The last line of the worker's log: why it stopped, when it died without a reply. */
static void log_tail(Instance *instance, char *out, size_t size) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/worker.log", instance->scratch);
    out[0] = 0;
    FILE *file = fopen(path, "r");
    if (!file) return;
    char line[1024];
    while (fgets(line, sizeof line, file))
        if (line[0] != '\n') snprintf(out, size, "%s", line);
    fclose(file);
    out[strcspn(out, "\n")] = 0;
}

/* Send one request and wait for its reply line. With `with_progress` (the analysis), progress lines go to
 * the host's progress bar and the host's abort is polled while waiting: an abort stops the worker (it starts
 * again on the next render). Returns the reply (caller frees) or NULL after reporting why. */
static char *ask(OfxImageEffectHandle effect, Instance *instance, const Text *request, int with_progress) {
    if (request->failed) {
        fail(effect, "out of memory");
        return NULL;
    }
    if (instance->worker <= 0 && start_worker(effect, instance) != kOfxStatOK) return NULL;
    if (!send_all(instance->socket, request->data, request->length) || !send_all(instance->socket, "\n", 1)) {
        char tail[1024];
        log_tail(instance, tail, sizeof tail);
        stop_worker(instance);
        fail(effect, "the worker stopped: %s (log: %s/worker.log)", tail, instance->scratch);
        return NULL;
    }
    for (;;) {
        char *newline = instance->pending.length ? memchr(instance->pending.data, '\n', instance->pending.length) : NULL;
        if (newline) {
            size_t length = (size_t)(newline - instance->pending.data);
            char *line = strndup(instance->pending.data, length);
            if (!line) {
                fail(effect, "out of memory");
                return NULL;
            }
            memmove(instance->pending.data, newline + 1, instance->pending.length - length - 1);
            instance->pending.length -= length + 1;
            double done, total;
            if (json_value(line, "stage") && json_number(line, "done", &done) && json_number(line, "total", &total)) {
                if (with_progress && progress && total > 0 &&
                    progress->progressUpdate(effect, done / total) == kOfxStatReplyNo) {
                    free(line);
                    stop_worker(instance);
                    return NULL; /* the user cancelled: not an error to report */
                }
                free(line);
                continue;
            }
            if (json_value(line, "error")) {
                char message[1024];
                json_string(line, "error", message, sizeof message);
                free(line);
                fail(effect, "%s", message);
                return NULL;
            }
            return line;
        }
        if (with_progress && effects->abort(effect)) {
            stop_worker(instance);
            return NULL;
        }
        struct pollfd wait = {instance->socket, POLLIN, 0};
        int ready = poll(&wait, 1, 100);
        if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
        char buffer[4096];
        ssize_t got = recv(instance->socket, buffer, sizeof buffer, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            char tail[1024];
            log_tail(instance, tail, sizeof tail);
            stop_worker(instance);
            fail(effect, "the worker stopped: %s (log: %s/worker.log)", tail, instance->scratch);
            return NULL;
        }
        text_add(&instance->pending, buffer, (size_t)got);
        if (instance->pending.failed) {
            stop_worker(instance);
            fail(effect, "out of memory");
            return NULL;
        }
    }
}

/* ----------------------------------------------------------------------------------------- pixels */

typedef struct Image {
    OfxPropertySetHandle handle;
    char *data;
    int bounds[4], row_bytes, channels, depth; /* depth: bytes per channel: 1, 2 or 4 (float) */
    int premultiplied;
} Image;

static OfxStatus fetch(OfxImageClipHandle clip, OfxTime time, Image *image) {
    memset(image, 0, sizeof *image);
    OfxStatus status = effects->clipGetImage(clip, time, NULL, &image->handle);
    if (status != kOfxStatOK) return status;
    char *depth = "", *components = "", *premultiplication = "";
    props->propGetPointer(image->handle, kOfxImagePropData, 0, (void **)&image->data);
    props->propGetIntN(image->handle, kOfxImagePropBounds, 4, image->bounds);
    props->propGetInt(image->handle, kOfxImagePropRowBytes, 0, &image->row_bytes);
    props->propGetString(image->handle, kOfxImageEffectPropPixelDepth, 0, &depth);
    props->propGetString(image->handle, kOfxImageEffectPropComponents, 0, &components);
    props->propGetString(image->handle, kOfxImageEffectPropPreMultiplication, 0, &premultiplication);
    image->channels = strcmp(components, kOfxImageComponentAlpha) == 0 ? 1 : 4;
    image->depth = strcmp(depth, kOfxBitDepthFloat) == 0 ? 4 : strcmp(depth, kOfxBitDepthShort) == 0 ? 2 : 1;
    image->premultiplied = strcmp(premultiplication, kOfxImagePreMultiplied) == 0;
    if (!image->data || !*depth || (strcmp(components, kOfxImageComponentRGBA) != 0 && image->channels != 1)) {
        effects->clipReleaseImage(image->handle);
        image->handle = NULL;
        return kOfxStatErrImageFormat;
    }
    return kOfxStatOK;
}

static void release(Image *image) {
    if (image->handle) effects->clipReleaseImage(image->handle);
    image->handle = NULL;
}

static char *pixel(const Image *image, int x, int y) {
    return image->data + (ptrdiff_t)(y - image->bounds[1]) * image->row_bytes +
           (ptrdiff_t)(x - image->bounds[0]) * image->channels * image->depth;
}

static float channel_value(const Image *image, const char *at, int c) {
    if (image->depth == 4) return ((const float *)at)[c];
    if (image->depth == 2) return ((const unsigned short *)at)[c] / 65535.0f;
    return ((const unsigned char *)at)[c] / 255.0f;
}

static void set_channel(const Image *image, char *at, int c, float value) {
    if (image->depth == 4) {
        ((float *)at)[c] = value;
        return;
    }
    value = value < 0 ? 0 : value > 1 ? 1 : value;
    if (image->depth == 2)
        ((unsigned short *)at)[c] = (unsigned short)(value * 65535.0f + 0.5f);
    else
        ((unsigned char *)at)[c] = (unsigned char)(value * 255.0f + 0.5f);
}

/* One frame as float32 for the worker: `channels` values a pixel over the box (x1, y1, x2, y2), rows
 * bottom-up; the mask's last channel (its alpha, or its only one), 0 where the image has no pixels. */
static int write_raw(const char *path, const Image *image, const int box[4], int channels) {
    int width = box[2] - box[0];
    float *row = calloc((size_t)width * channels, sizeof *row);
    char partial[PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", path);
    FILE *file = fopen(partial, "wb");
    int ok = row && file;
    for (int y = box[1]; ok && y < box[3]; y++) {
        memset(row, 0, (size_t)width * channels * sizeof *row);
        for (int x = box[0]; image && x < box[2]; x++) {
            if (x < image->bounds[0] || x >= image->bounds[2] || y < image->bounds[1] || y >= image->bounds[3]) continue;
            const char *at = pixel(image, x, y);
            float *out = row + (size_t)(x - box[0]) * channels;
            if (channels == 1)
                out[0] = channel_value(image, at, image->channels - 1);
            else
                for (int c = 0; c < 4; c++) out[c] = channel_value(image, at, c);
        }
        ok = fwrite(row, sizeof *row, (size_t)width * channels, file) == (size_t)width * channels;
    }
    if (file) ok = fclose(file) == 0 && ok;
    free(row);
    if (ok) ok = rename(partial, path) == 0;
    if (!ok) unlink(partial);
    return ok;
}

/* ------------------------------------------------------------------------------------------ state */

static Instance *instance_of(OfxImageEffectHandle effect) {
    OfxPropertySetHandle set;
    Instance *instance = NULL;
    effects->getPropertySet(effect, &set);
    props->propGetPointer(set, kOfxPropInstanceData, 0, (void **)&instance);
    return instance;
}

static OfxImageClipHandle clip(OfxImageEffectHandle effect, const char *name, OfxPropertySetHandle *set) {
    OfxImageClipHandle handle = NULL;
    OfxPropertySetHandle ignored;
    if (effects->clipGetHandle(effect, name, &handle, set ? set : &ignored) != kOfxStatOK) return NULL;
    return handle;
}

static int connected(OfxImageEffectHandle effect, const char *name) {
    OfxPropertySetHandle set;
    int yes = 0;
    if (clip(effect, name, &set)) props->propGetInt(set, kOfxImageClipPropConnected, 0, &yes);
    return yes;
}

static OfxParamHandle param(OfxImageEffectHandle effect, const char *name) {
    OfxParamSetHandle set;
    OfxParamHandle handle = NULL;
    effects->getParamSet(effect, &set);
    params->paramGetHandle(set, name, &handle, NULL);
    return handle;
}

static int analysis_run(OfxImageEffectHandle effect) {
    int run = 0;
    params->paramGetValue(param(effect, ANALYSIS_RUN), &run);
    return run;
}

typedef struct Shot {
    int first, last;
    double fps;
    OfxRectD rod;
} Shot;

static void source_shot(OfxImageEffectHandle effect, Shot *shot) {
    OfxPropertySetHandle set;
    double range[2] = {0, 0};
    OfxImageClipHandle source = clip(effect, SOURCE, &set);
    props->propGetDoubleN(set, kOfxImageEffectPropFrameRange, 2, range);
    shot->fps = 25; /* every host gives a clip's rate; the plate's timing (the dub's audio) needs one */
    props->propGetDouble(set, kOfxImageEffectPropFrameRate, 0, &shot->fps);
    shot->first = (int)range[0];
    shot->last = (int)range[1];
    effects->clipGetRegionOfDefinition(source, range[0], &shot->rod);
}

/* The analysis must be made (again) before this render: none yet, Analyse pressed, or another Source. */
static int analysis_pending(OfxImageEffectHandle effect, const Instance *instance) {
    Shot shot;
    char complete[PATH_MAX + 64]; /* the worker made the snapshot a plate: not cut short by an abort */
    snprintf(complete, sizeof complete, "%s/snapshot%d/plate.complete", instance->scratch, instance->snapshot);
    source_shot(effect, &shot);
    return instance->snapshot == 0 || access(complete, F_OK) != 0 || instance->snapshot_run != analysis_run(effect) ||
           instance->first != shot.first || instance->last != shot.last ||
           memcmp(&instance->rod, &shot.rod, sizeof shot.rod) != 0;
}

/* The values the worker renders with: constants, and the animatable ones at every frame of the shot. */
static void values_json(OfxImageEffectHandle effect, const Instance *instance, Text *out) {
    text_add(out, "\"values\": {", 11);
    for (int i = 0, n = 0; i < LIPSYNC_PARAM_COUNT; i++) {
        const LipSyncParam *p = &LIPSYNC_PARAMS[i];
        if (p->animates) continue;
        OfxParamHandle handle = param(effect, p->name);
        text_printf(out, "%s\"%s\": ", n++ ? ", " : "", p->name);
        if (strcmp(p->type, kOfxParamTypeString) == 0) {
            char *value = "";
            params->paramGetValue(handle, &value);
            text_json_string(out, value ? value : "");
        } else if (strcmp(p->type, kOfxParamTypeDouble) == 0) {
            double value = 0;
            params->paramGetValue(handle, &value);
            text_printf(out, "%.17g", value);
        } else if (strcmp(p->type, kOfxParamTypeBoolean) == 0) {
            int value = 0;
            params->paramGetValue(handle, &value);
            text_printf(out, "%s", value ? "true" : "false");
        } else {
            int value = 0;
            params->paramGetValue(handle, &value);
            text_printf(out, "%d", value);
        }
    }
    text_add(out, "}, \"keys\": {", 12);
    for (int i = 0, n = 0; i < LIPSYNC_PARAM_COUNT; i++) {
        const LipSyncParam *p = &LIPSYNC_PARAMS[i];
        if (!p->animates) continue;
        OfxParamHandle handle = param(effect, p->name);
        text_printf(out, "%s\"%s\": [", n++ ? ", " : "", p->name);
        for (int frame = instance->first; frame <= instance->last; frame++) {
            double value = 0;
            params->paramGetValueAtTime(handle, (OfxTime)frame, &value);
            text_printf(out, "%s%.17g", frame > instance->first ? ", " : "", value);
        }
        text_add(out, "]", 1);
    }
    text_add(out, "}", 1);
}

static void prepare_request(OfxImageEffectHandle effect, const Instance *instance, const Shot *shot, Text *out) {
    text_printf(out, "{\"op\": \"prepare\", \"snapshot\": %d, \"first\": %d, \"last\": %d, \"width\": %d, "
                     "\"height\": %d, \"fps\": %.17g, \"bits\": %d, \"premultiplied\": %s, \"mask\": %s, ",
                instance->snapshot, instance->first, instance->last, instance->width, instance->height, shot->fps,
                instance->bits,
                instance->premultiplied ? "true" : "false", connected(effect, MASK) ? "true" : "false");
    values_json(effect, instance, out);
    text_add(out, "}", 1);
}

static int skipped(const Instance *instance, int frame) {
    return instance->skip && frame >= instance->first && frame <= instance->last && instance->skip[frame - instance->first];
}

/* --------------------------------------------------------------------------------------- analysis */

/* Fetch every Source (and Mask) frame of the shot into a new snapshot. Only from render, and only after
 * GetFramesNeeded declared the whole range (analysis_pending). */
static OfxStatus read_shot(OfxImageEffectHandle effect, Instance *instance) {
    Shot shot;
    source_shot(effect, &shot);
    OfxImageClipHandle source = clip(effect, SOURCE, NULL), mask = connected(effect, MASK) ? clip(effect, MASK, NULL) : NULL;
    instance->snapshot++;
    char folder[PATH_MAX + 32], path[PATH_MAX + 64];
    snprintf(folder, sizeof folder, "%s/snapshot%d", instance->scratch, instance->snapshot);
    if (mkdir(folder, 0755) != 0) return fail(effect, "cannot make %s: %s", folder, strerror(errno));
    int frames = shot.last - shot.first + 1;
    for (int frame = shot.first; frame <= shot.last; frame++) {
        if (effects->abort(effect)) return kOfxStatFailed;
        if (progress && progress->progressUpdate(effect, (double)(frame - shot.first) / frames) == kOfxStatReplyNo)
            return kOfxStatFailed;
        Image image;
        OfxStatus status = fetch(source, frame, &image);
        if (status != kOfxStatOK) return fail(effect, "cannot fetch Source frame %d (status %d)", frame, status);
        if (frame == shot.first) {
            instance->width = image.bounds[2] - image.bounds[0];
            instance->height = image.bounds[3] - image.bounds[1];
            instance->premultiplied = image.premultiplied;
            instance->bits = image.depth * 8;
        }
        int box[4] = {image.bounds[0], image.bounds[1], image.bounds[0] + instance->width, image.bounds[1] + instance->height};
        snprintf(path, sizeof path, "%s/source.%d.raw", folder, frame);
        int ok = image.channels == 4 && write_raw(path, &image, box, 4);
        release(&image);
        if (!ok) return fail(effect, "cannot write Source frame %d to %s (an RGBA plate is needed)", frame, path);
        if (mask) {
            Image matte; /* no image here: black and transparent, as the spec says */
            int got = fetch(mask, frame, &matte) == kOfxStatOK;
            snprintf(path, sizeof path, "%s/mask.%d.raw", folder, frame);
            ok = write_raw(path, got ? &matte : NULL, box, 1);
            if (got) release(&matte);
            if (!ok) return fail(effect, "cannot write Mask frame %d to %s", frame, path);
        }
    }
    instance->first = shot.first;
    instance->last = shot.last;
    instance->rod = shot.rod;
    instance->snapshot_run = analysis_run(effect);
    return kOfxStatOK;
}

static OfxStatus take_snapshot(OfxImageEffectHandle effect, Instance *instance) {
    if (progress) progress->progressStart(effect, "LipSync: reading the shot");
    OfxStatus status = read_shot(effect, instance);
    if (progress) progress->progressEnd(effect);
    return status;
}

/* Have the worker ready for the current values (tracking the face on a new snapshot). */
static OfxStatus prepare(OfxImageEffectHandle effect, Instance *instance) {
    Shot shot;
    source_shot(effect, &shot);
    Text request = {0};
    prepare_request(effect, instance, &shot, &request);
    if (!request.failed && instance->prepared && instance->worker > 0 && strcmp(instance->prepared, request.data) == 0) {
        free(request.data);
        return kOfxStatOK;
    }
    if (progress) progress->progressStart(effect, "LipSync: tracking the face, loading the model");
    char *reply = ask(effect, instance, &request, 1);
    if (progress) progress->progressEnd(effect);
    if (!reply) {
        free(request.data);
        return kOfxStatFailed;
    }
    free(instance->skip);
    instance->skip = calloc((size_t)(instance->last - instance->first + 1), 1);
    const char *at = json_value(reply, "skip"); /* [1004, 1010] */
    for (at = at && *at == '[' ? at + 1 : NULL; at && *at && *at != ']';) {
        char *end;
        long frame = strtol(at, &end, 10);
        if (end == at) {
            at++; /* a comma */
            continue;
        }
        if (frame >= instance->first && frame <= instance->last) instance->skip[frame - instance->first] = 1;
        at = end;
    }
    free(reply);
    free(instance->prepared);
    instance->prepared = request.data;
    return kOfxStatOK;
}

/* ---------------------------------------------------------------------------------------- actions */

static OfxStatus load(void) {
    props = host->fetchSuite(host->host, kOfxPropertySuite, 1);
    effects = host->fetchSuite(host->host, kOfxImageEffectSuite, 1);
    params = host->fetchSuite(host->host, kOfxParameterSuite, 1);
    progress = host->fetchSuite(host->host, kOfxProgressSuite, 1);
    messages = host->fetchSuite(host->host, kOfxMessageSuite, 1);
    return props && effects && params ? kOfxStatOK : kOfxStatErrMissingHostFeature;
}

static OfxStatus describe(OfxImageEffectHandle effect) {
    OfxPropertySetHandle set;
    effects->getPropertySet(effect, &set);
    props->propSetString(set, kOfxPropLabel, 0, "LipSync");
    props->propSetString(set, kOfxImageEffectPluginPropGrouping, 0, "LipSync");
    props->propSetString(set, kOfxPropVersionLabel, 0, LIPSYNC_VERSION);
    props->propSetString(set, kOfxPropPluginDescription, 0,
                         "Re-generates an actor's lips to match new dialogue (the audio file parameter). The first "
                         "render, or the first after Analyse, reads the whole Source clip and tracks the face; the "
                         "optional Mask's alpha replaces the automatic mouth mask.");
    props->propSetString(set, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
    props->propSetString(set, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthByte);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
    props->propSetString(set, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthFloat);
    /* Whole frames at one depth: the face tracker and the model see the whole picture. */
    props->propSetInt(set, kOfxImageEffectPropSupportsTiles, 0, 0);
    props->propSetInt(set, kOfxImageEffectPropSupportsMultiResolution, 0, 0);
    props->propSetInt(set, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    props->propSetInt(set, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(set, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
    /* One render per instance at a time: each instance talks to its own worker. */
    props->propSetString(set, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderInstanceSafe);
    return kOfxStatOK;
}

static OfxStatus describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
    char *context = "";
    props->propGetString(in, kOfxImageEffectPropContext, 0, &context);
    if (strcmp(context, kOfxImageEffectContextFilter) != 0 && strcmp(context, kOfxImageEffectContextGeneral) != 0)
        return kOfxStatErrUnsupported;
    OfxPropertySetHandle set;
    effects->clipDefine(effect, SOURCE, &set);
    props->propSetString(set, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    props->propSetInt(set, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(set, kOfxImageEffectPropSupportsTiles, 0, 0);
    effects->clipDefine(effect, MASK, &set);
    props->propSetString(set, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentAlpha);
    props->propSetString(set, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGBA);
    props->propSetInt(set, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(set, kOfxImageEffectPropSupportsTiles, 0, 0);
    props->propSetInt(set, kOfxImageClipPropOptional, 0, 1);
    props->propSetInt(set, kOfxImageClipPropIsMask, 0, 1);
    effects->clipDefine(effect, OUTPUT, &set);
    props->propSetString(set, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
    props->propSetInt(set, kOfxImageEffectPropSupportsTiles, 0, 0);

    OfxParamSetHandle param_set;
    effects->getParamSet(effect, &param_set);
    for (int i = 0; i < LIPSYNC_PARAM_COUNT; i++) {
        const LipSyncParam *p = &LIPSYNC_PARAMS[i];
        params->paramDefine(param_set, p->type, p->name, &set);
        props->propSetString(set, kOfxPropLabel, 0, p->label);
        props->propSetString(set, kOfxParamPropHint, 0, p->hint);
        props->propSetInt(set, kOfxParamPropAnimates, 0, p->animates);
        if (strcmp(p->type, kOfxParamTypeString) == 0) {
            props->propSetString(set, kOfxParamPropDefault, 0, p->string_default);
            props->propSetString(set, kOfxParamPropStringMode, 0,
                                 p->is_file ? kOfxParamStringIsFilePath : kOfxParamStringIsSingleLine);
            if (p->is_file) props->propSetInt(set, kOfxParamPropStringFilePathExists, 0, 1);
        } else if (strcmp(p->type, kOfxParamTypeDouble) == 0) {
            props->propSetDouble(set, kOfxParamPropDefault, 0, p->number_default);
            if (p->has_min) props->propSetDouble(set, kOfxParamPropMin, 0, p->min);
            if (p->has_min) props->propSetDouble(set, kOfxParamPropDisplayMin, 0, p->min);
            if (p->has_max) props->propSetDouble(set, kOfxParamPropMax, 0, p->max);
            if (p->has_max) props->propSetDouble(set, kOfxParamPropDisplayMax, 0, p->max);
        } else {
            props->propSetInt(set, kOfxParamPropDefault, 0, (int)p->number_default);
            if (p->has_min) props->propSetInt(set, kOfxParamPropMin, 0, (int)p->min);
            if (p->has_max) props->propSetInt(set, kOfxParamPropMax, 0, (int)p->max);
            for (int c = 0; p->choices[c]; c++) props->propSetString(set, kOfxParamPropChoiceOption, c, p->choices[c]);
        }
    }
    params->paramDefine(param_set, kOfxParamTypePushButton, ANALYSE, &set);
    props->propSetString(set, kOfxPropLabel, 0, "Analyse");
    props->propSetString(set, kOfxParamPropHint, 0,
                         "read the whole Source clip again and track the face on the next render (after the "
                         "upstream picture or the Mask changed)");
    params->paramDefine(param_set, kOfxParamTypeInteger, ANALYSIS_RUN, &set);
    props->propSetInt(set, kOfxParamPropSecret, 0, 1);
    props->propSetInt(set, kOfxParamPropAnimates, 0, 0);
    props->propSetInt(set, kOfxParamPropDefault, 0, 0);
    return kOfxStatOK;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk) {
    (void)info, (void)flag, (void)walk;
    return remove(path);
}

static OfxStatus create_instance(OfxImageEffectHandle effect) {
    Instance *instance = calloc(1, sizeof *instance);
    if (!instance) return kOfxStatErrMemory;
    const char *tmp = getenv("TMPDIR");
    snprintf(instance->scratch, sizeof instance->scratch, "%s/lipsync-ofx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(instance->scratch)) {
        free(instance);
        return fail(effect, "cannot make a scratch folder in %s: %s", tmp && *tmp ? tmp : "/tmp", strerror(errno));
    }
    pthread_mutex_init(&instance->lock, NULL);
    instance->socket = -1;
    OfxPropertySetHandle set;
    effects->getPropertySet(effect, &set);
    props->propSetPointer(set, kOfxPropInstanceData, 0, instance);
    return kOfxStatOK;
}

static OfxStatus destroy_instance(OfxImageEffectHandle effect) {
    Instance *instance = instance_of(effect);
    if (!instance) return kOfxStatOK;
    stop_worker(instance);
    nftw(instance->scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&instance->lock);
    free(instance->pending.data);
    free(instance->skip);
    free(instance);
    return kOfxStatOK;
}

/* Low memory: the worker (the model, the renderer, its cell of frames) goes; the snapshot and the cached
 * track stay on disk, so the next render only starts the worker and loads the model again. */
static OfxStatus purge_caches(OfxImageEffectHandle effect) {
    Instance *instance = instance_of(effect);
    pthread_mutex_lock(&instance->lock);
    stop_worker(instance);
    pthread_mutex_unlock(&instance->lock);
    return kOfxStatOK;
}

static OfxStatus region_of_definition(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    /* The Source's, in both contexts (the General context's default would add the Mask's). */
    OfxTime time = 0;
    OfxRectD rod;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    OfxStatus status = effects->clipGetRegionOfDefinition(clip(effect, SOURCE, NULL), time, &rod);
    if (status != kOfxStatOK) return status;
    props->propSetDoubleN(out, kOfxImageEffectPropRegionOfDefinition, 4, &rod.x1);
    return kOfxStatOK;
}

static OfxStatus frames_needed(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    Instance *instance = instance_of(effect);
    OfxTime time = 0;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    double range[2] = {time, time};
    pthread_mutex_lock(&instance->lock);
    if (analysis_pending(effect, instance)) { /* the render will read the whole shot */
        Shot shot;
        source_shot(effect, &shot);
        range[0] = shot.first;
        range[1] = shot.last;
    }
    pthread_mutex_unlock(&instance->lock);
    props->propSetDoubleN(out, kOfxImageClipPropFrameRange_ SOURCE, 2, range);
    if (connected(effect, MASK)) props->propSetDoubleN(out, kOfxImageClipPropFrameRange_ MASK, 2, range);
    return kOfxStatOK;
}

static OfxStatus is_identity(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    Instance *instance = instance_of(effect);
    OfxTime time = 0;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    int identity = 0;
    pthread_mutex_lock(&instance->lock);
    if (instance->prepared && !analysis_pending(effect, instance)) {
        /* Only while the worker's answer is for the current values: a bypass may have been edited since. */
        Shot shot;
        source_shot(effect, &shot);
        Text request = {0};
        prepare_request(effect, instance, &shot, &request);
        identity = !request.failed && strcmp(request.data, instance->prepared) == 0 && skipped(instance, (int)time);
        free(request.data);
    }
    pthread_mutex_unlock(&instance->lock);
    if (!identity) return kOfxStatReplyDefault;
    props->propSetString(out, kOfxPropName, 0, SOURCE);
    props->propSetDouble(out, kOfxPropTime, 0, time);
    return kOfxStatOK;
}

static OfxStatus instance_changed(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
    char *type = "", *name = "";
    props->propGetString(in, kOfxPropType, 0, &type);
    props->propGetString(in, kOfxPropName, 0, &name);
    if (strcmp(type, kOfxTypeParameter) != 0 || strcmp(name, ANALYSE) != 0) return kOfxStatReplyDefault;
    /* Images may only be fetched in render: the next render analyses, and a new value makes the host render. */
    params->paramSetValue(param(effect, ANALYSIS_RUN), analysis_run(effect) + 1);
    return kOfxStatOK;
}

static OfxStatus composite(OfxImageEffectHandle effect, Instance *instance, const Image *source, const Image *output,
                           int frame) {
    int width = source->bounds[2] - source->bounds[0], height = source->bounds[3] - source->bounds[1];
    float *dub = NULL;
    if (!skipped(instance, frame)) {
        Text request = {0};
        text_printf(&request, "{\"op\": \"render\", \"frame\": %d, \"width\": %d, \"height\": %d}", frame, width, height);
        char *reply = ask(effect, instance, &request, 0);
        free(request.data);
        if (!reply) return kOfxStatFailed;
        free(reply);
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/render.raw", instance->scratch);
        size_t count = (size_t)width * height * 5;
        dub = malloc(count * sizeof *dub);
        FILE *file = fopen(path, "rb");
        int ok = dub && file && fread(dub, sizeof *dub, count, file) == count;
        if (file) fclose(file);
        if (!ok) {
            free(dub);
            return fail(effect, "cannot read the worker's frame %d from %s", frame, path);
        }
    }
    size_t bytes = (size_t)4 * output->depth;
    for (int y = output->bounds[1]; y < output->bounds[3]; y++) {
        for (int x = output->bounds[0]; x < output->bounds[2]; x++) {
            char *to = pixel(output, x, y);
            const float *d = dub ? dub + ((size_t)(y - source->bounds[1]) * width + (x - source->bounds[0])) * 5 : NULL;
            if (d && d[4] > 0) {
                for (int c = 0; c < 4; c++) set_channel(output, to, c, d[c]);
            } else {
                memcpy(to, pixel(source, x, y), bytes); /* the host's own pixels, to the bit */
            }
        }
    }
    free(dub);
    return kOfxStatOK;
}

static OfxStatus render(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
    Instance *instance = instance_of(effect);
    OfxTime time = 0;
    props->propGetDouble(in, kOfxPropTime, 0, &time);
    int frame = (int)time;
    pthread_mutex_lock(&instance->lock);
    OfxStatus status = analysis_pending(effect, instance) ? take_snapshot(effect, instance) : kOfxStatOK;
    if (status == kOfxStatOK) status = prepare(effect, instance);
    Image source = {0}, output = {0};
    if (status == kOfxStatOK) {
        status = fetch(clip(effect, SOURCE, NULL), time, &source);
        if (status != kOfxStatOK) status = fail(effect, "cannot fetch Source frame %d (status %d)", frame, status);
    }
    if (status == kOfxStatOK) {
        status = fetch(clip(effect, OUTPUT, NULL), time, &output);
        if (status != kOfxStatOK) status = fail(effect, "cannot fetch the Output image of frame %d", frame);
    }
    if (status == kOfxStatOK) {
        if (source.channels != 4 || output.channels != 4 || source.depth != output.depth ||
            output.bounds[0] < source.bounds[0] || output.bounds[1] < source.bounds[1] ||
            output.bounds[2] > source.bounds[2] || output.bounds[3] > source.bounds[3])
            status = fail(effect, "frame %d: Source and Output must be RGBA at one depth, Output within Source", frame);
        else
            status = composite(effect, instance, &source, &output, frame);
    }
    release(&source);
    release(&output);
    pthread_mutex_unlock(&instance->lock);
    return status;
}

static OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle in, OfxPropertySetHandle out) {
    OfxImageEffectHandle effect = (OfxImageEffectHandle)handle;
    if (strcmp(action, kOfxActionLoad) == 0) return load();
    if (strcmp(action, kOfxActionDescribe) == 0) return describe(effect);
    if (strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) return describe_in_context(effect, in);
    if (strcmp(action, kOfxActionCreateInstance) == 0) return create_instance(effect);
    if (strcmp(action, kOfxActionDestroyInstance) == 0) return destroy_instance(effect);
    if (strcmp(action, kOfxActionPurgeCaches) == 0) return purge_caches(effect);
    if (strcmp(action, kOfxImageEffectActionGetRegionOfDefinition) == 0) return region_of_definition(effect, in, out);
    if (strcmp(action, kOfxImageEffectActionGetFramesNeeded) == 0) return frames_needed(effect, in, out);
    if (strcmp(action, kOfxImageEffectActionIsIdentity) == 0) return is_identity(effect, in, out);
    if (strcmp(action, kOfxActionInstanceChanged) == 0) return instance_changed(effect, in);
    if (strcmp(action, kOfxImageEffectActionRender) == 0) return render(effect, in);
    return kOfxStatReplyDefault;
}

static void set_host(OfxHost *given) { host = given; }

static OfxPlugin plugin = {kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, PLUGIN_ID,
                           LIPSYNC_VERSION_MAJOR, LIPSYNC_VERSION_MINOR, set_host, main_entry};

__attribute__((visibility("default"))) int OfxGetNumberOfPlugins(void) { return 1; }

__attribute__((visibility("default"))) OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &plugin : NULL; }
