/*
 * recent.c: the ring of recent changes (contract: recent.h). A fixed array of
 * API_RECENT_MAX entries; next is where the following note goes, count how many are filled.
 * Readers copy the entries out under the lock and render outside it.
 */
#include "handlers/recent.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/api.h"
#include "util/clock.h"
#include "util/xalloc.h"

struct note {
    long long at_ms; /* Unix ms */
    char method[16];
    char path[200];
    char target[IP_TEXT_MAX + 2];
    long items;
    int status;
    char who[72];
    char caller[IP_TEXT_MAX];
    char change_id[API_AUDIT_ID_MAX];
    int aborted;
    char event[40]; /* a change the registry made on its own, else "" */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by lock */
static struct note ring[API_RECENT_MAX];
static size_t next, count;

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Put n in the ring, over the oldest when it is full. */
static void add(const struct note *n)
{
    pthread_mutex_lock(&lock);
    ring[next] = *n;
    next = (next + 1) % API_RECENT_MAX;
    if (count < API_RECENT_MAX)
        count++;
    pthread_mutex_unlock(&lock);
}

void api_recent_note(const char *method, const char *path, const char *target, long items,
                     int status, const char *token, const char *caller, const char *change_id,
                     int aborted)
{
    struct note n;
    memset(&n, 0, sizeof(n));
    n.at_ms = (long long)clock_wall_ms();
    copy(n.method, sizeof(n.method), method);
    copy(n.path, sizeof(n.path), path);
    copy(n.target, sizeof(n.target), target && strcmp(target, "-") ? target : "");
    n.items = items;
    n.status = status;
    copy(n.who, sizeof(n.who), token && token[0] && strcmp(token, "-") ? token : "anonymous");
    copy(n.caller, sizeof(n.caller), caller && strcmp(caller, "-") ? caller : "");
    copy(n.change_id, sizeof(n.change_id), change_id);
    n.aborted = aborted;
    add(&n);
}

void api_recent_event(const struct reg_event *ev)
{
    struct note n;
    memset(&n, 0, sizeof(n));
    n.at_ms = (long long)clock_wall_ms();
    copy(n.event, sizeof(n.event), ev->what);
    ip_format(ev->ip, n.target);
    n.items = -1;
    copy(n.who, sizeof(n.who), ev->by);
    copy(n.change_id, sizeof(n.change_id), ev->change_id);
    add(&n);
}


/* Unix ms as RFC 3339 UTC with milliseconds (as handlers/placement.c shows times). */
static json_t *time_json(long long ms)
{
    char when[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03dZ", (int)(ms % 1000));
    return json_string(when);
}

static json_t *note_json(const struct note *n)
{
    json_t *o = json_pack("{s:o, s:s}", "at", time_json(n->at_ms), "who", n->who);
    if (n->event[0]) {
        json_object_set_new(o, "event", json_string(n->event));
    } else {
        json_object_set_new(o, "method", json_string(n->method));
        json_object_set_new(o, "path", json_string(n->path));
        json_object_set_new(o, "status", json_integer(n->status));
    }
    if (n->items >= 0)
        json_object_set_new(o, "items", json_integer(n->items));
    else if (n->target[0])
        json_object_set_new(o, "target", json_string(n->target));
    if (n->caller[0])
        json_object_set_new(o, "caller", json_string(n->caller));
    if (n->change_id[0])
        json_object_set_new(o, "change_id", json_string(n->change_id));
    if (n->aborted)
        json_object_set_new(o, "aborted", json_true());
    return o;
}

json_t *api_recent_json(size_t max)
{
    struct note *copies = xmalloc(sizeof(*copies) * API_RECENT_MAX);
    size_t n;
    json_t *arr = json_array();

    pthread_mutex_lock(&lock);
    n = count < max ? count : max;
    for (size_t i = 0; i < n; i++) /* newest first */
        copies[i] = ring[(next + API_RECENT_MAX - 1 - i) % API_RECENT_MAX];
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, note_json(&copies[i]));
    free(copies);
    return arr;
}
