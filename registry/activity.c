/*
 * activity.c: reg_activity(), what the committer and the resync are doing, for GET /status.
 * Reads the committer's counters under work_lock and the resync's atomics; asks the provider
 * how long a write would wait (its own lock).
 */
#include "registry/internal.h"

#include <string.h>

void reg_activity(struct reg_registry *reg, struct reg_activity *out)
{
    memset(out, 0, sizeof(*out));
    out->commit = reg->opt.commit == REG_COMMIT_GROUP ? "group" : "immediate";
    pthread_mutex_lock(&reg->work_lock);
    out->queued = reg->queued;
    out->in_call = reg->in_call;
    out->batches = reg->batches;
    out->batched_changes = reg->batched_changes;
    pthread_mutex_unlock(&reg->work_lock);
    if (reg->prov->ops->write_wait_ns)
        out->write_wait_ms = (double)reg->prov->ops->write_wait_ns(reg->prov) / 1e6;
    out->resync_ms = reg->opt.resync_ms;
    out->resyncs = atomic_load(&reg->resyncs);
    out->resynced_ms = atomic_load(&reg->resynced_ms);
}
