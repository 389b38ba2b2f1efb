/*
 * recent.c: the rings of recent changes and refusals (contract: recent.h): fixed arrays,
 * each with where the following note goes and how many are filled.
 * Readers copy the entries out under the lock and render outside it.
 */
#include "handlers/recent.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers/api.h"
#include "handlers/placement.h"
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

/* Changes (2xx, or a parked change whose client left) and refusals (4xx, 5xx) are kept
 * apart, so a client sending refused requests cannot push the changes out. */
struct ring {
    struct note *notes;
    size_t max, next, count; /* next: where the following note goes */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by lock */
static struct note change_notes[API_RECENT_MAX], refusal_notes[API_RECENT_REFUSALS];
static struct ring changes = {change_notes, API_RECENT_MAX, 0, 0};
static struct ring refusals = {refusal_notes, API_RECENT_REFUSALS, 0, 0};

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Put n in its ring, over the oldest when that is full. */
static void add(const struct note *n)
{
    struct ring *r = !n->event[0] && !n->aborted && n->status >= 400 ? &refusals : &changes;
    pthread_mutex_lock(&lock);
    r->notes[r->next] = *n;
    r->next = (r->next + 1) % r->max;
    if (r->count < r->max)
        r->count++;
    pthread_mutex_unlock(&lock);
}

/* The i-th newest note of r. Caller holds lock. */
static const struct note *newest(const struct ring *r, size_t i)
{
    return &r->notes[(r->next + r->max - 1 - i) % r->max];
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


static json_t *note_json(const struct note *n)
{
    json_t *o = json_pack("{s:o, s:s}", "at", api_json_time_ms(n->at_ms), "who", n->who);
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
    struct note *copies = xmalloc(sizeof(*copies) * (API_RECENT_MAX + API_RECENT_REFUSALS));
    size_t n = 0, a = 0, b = 0;
    json_t *arr = json_array();

    pthread_mutex_lock(&lock);
    while (n < max && (a < changes.count || b < refusals.count)) { /* newest first: a merge */
        const struct note *x = a < changes.count ? newest(&changes, a) : NULL;
        const struct note *y = b < refusals.count ? newest(&refusals, b) : NULL;
        if (x && (!y || x->at_ms >= y->at_ms)) {
            copies[n++] = *x;
            a++;
        } else {
            copies[n++] = *y;
            b++;
        }
    }
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, note_json(&copies[i]));
    free(copies);
    return arr;
}
