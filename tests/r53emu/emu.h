/*
 * emu.h: the modules of r53emu, a strict stand-in for Amazon Route 53 used by integration tests
 * and benchmarks (see README.md in this folder for the command line and the control API).
 *
 * Modules (one .c each):
 * - emu_util.c   XML text escaping, AWS-shaped errors, clocks, a seeded PRNG.
 * - emu_xml.c    strict parsing of the ChangeResourceRecordSetsRequest document (libxml2) into an
 *                emu_batch, with Xerces-style schema messages as Route 53 sends them.
 * - emu_zone.c   the hosted zones, their record sets and the change log behind one mutex:
 *                validation and atomic application of change batches, listing, GetChange,
 *                GetHostedZone, and the JSON views used by the control API.
 * - emu_auth.c   SigV4 verification of every API request (signing with aws/sigv4.h).
 * - emu_resolve.c simulated DNS answers (weighted choice, aliases followed) from a plan that
 *                emu_zone.c builds, for the control API's /_emu/resolve.
 * - emu_faults.c fault injection, the account-wide token bucket and the call statistics.
 * - emu_main.c   command line, libmicrohttpd daemon, routing, responses, delayed answers.
 *
 * Everything here is test tooling: it lives under tests/ and uses the emu_ prefix.
 */
#ifndef R53EMU_EMU_H
#define R53EMU_EMU_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/buf.h"

#define EMU_NS "https://route53.amazonaws.com/doc/2013-04-01/"

/* --- XML text into a struct buf (emu_util.c) ---------------------------------------------- */

/* Append s as XML text: & < > and " escaped (Route 53 escapes " too, and leaves ' alone). */
void emu_buf_add_xml(struct buf *b, const char *s);

/* --- errors as Route 53 sends them (emu_util.c) ------------------------------------------- */

struct emu_err {
    int status;       /* HTTP status; 0 while no error was set */
    const char *type; /* "Sender" or "Receiver" */
    const char *code; /* static string: "InvalidChangeBatch", "InvalidInput", ... */
    char *message;    /* heap; unused for InvalidChangeBatch (see messages) */
    char **messages;  /* InvalidChangeBatch: one entry per problem, in batch order */
    size_t nmessages;
    long long retry_after_ms; /* > 0: sent as x-amz-retry-after (set after emu_err_set) */
};

/* Set a single-message error (replaces any earlier one). */
void emu_err_set(struct emu_err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Append one InvalidChangeBatch message (status 400, Sender). */
void emu_err_icb(struct emu_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "[m1, m2]" for the ErrorResponse envelope, or the message; caller frees. */
char *emu_err_text(const struct emu_err *e);
void emu_err_release(struct emu_err *e); /* accepts a zeroed struct */

/* --- clocks and randomness (emu_util.c) ---------------------------------------------------- */

long long emu_mono_ms(void);
long long emu_real_ms(void);
/* "2017-03-10T01:36:41.958Z"; out holds 32 bytes. */
void emu_iso8601(long long unix_ms, char out[32]);

struct emu_rng {
    uint64_t s;
};
void emu_rng_seed(struct emu_rng *r, uint64_t seed);
uint64_t emu_rng_next(struct emu_rng *r);
double emu_rng_unit(struct emu_rng *r); /* uniform in [0, 1) */

/* Number of UTF-8 code points in s[0..n) (what XML Schema calls length). */
size_t emu_utf8_len(const char *s, size_t n);

/* --- change batches (emu_xml.c) ------------------------------------------------------------ */

enum emu_action { EMU_CREATE, EMU_DELETE, EMU_UPSERT };

struct emu_change {
    enum emu_action action;
    char *name; /* as sent */
    char type[8];
    char *set_id;    /* NULL when absent */
    long weight;     /* -1 when absent */
    long long ttl;   /* -1 when absent */
    int has_records; /* a ResourceRecords element was present */
    char **values;
    size_t nvalues;
    const char *unsupported; /* first element r53emu does not emulate (static), or NULL */
    char *health_check_id;   /* NULL when absent */
    /* AliasTarget (all three children are required when it is present) */
    int has_alias;
    char *alias_zone; /* HostedZoneId as sent */
    char *alias_dns;  /* DNSName as sent */
    int alias_eth;    /* EvaluateTargetHealth: 1 true, 0 false */
};

struct emu_batch {
    char *comment; /* NULL when absent */
    struct emu_change *changes;
    size_t n;
    /* Request limits as Route 53 counts them: UPSERT counts each element/character twice; an
     * alias counts as one element and no characters. */
    size_t record_units;
    size_t char_units;
};

/* Parse a ChangeResourceRecordSetsRequest body strictly: namespace, element order (unless
 * lenient_order) and occurrence, simple-type facets. On failure returns -1 with err set
 * (InvalidInput or MalformedInput, HTTP 400); the batch is then empty. Thread-safe once
 * xmlInitParser() ran. */
int emu_xml_parse_batch(const char *body, size_t len, int lenient_order, struct emu_batch *out,
                        struct emu_err *err);
void emu_batch_release(struct emu_batch *b);

/* --- the store (emu_zone.c) ---------------------------------------------------------------- */

struct emu_store;

/* id_seed also seeds the resolver's draws (emu_store_resolve). max_records: record sets per
 * zone (Route 53's default quota is 10,000). */
struct emu_store *emu_store_create(uint64_t id_seed, size_t max_records);
void emu_store_destroy(struct emu_store *s);
/* Add a zone (startup only, not thread-safe). name is normalized; -1 with a reason in why. */
int emu_store_add_zone(struct emu_store *s, const char *id, const char *name, char *why,
                       size_t why_len);

/* Each call below takes the store lock for its whole duration; all are thread-safe.
 * On failure they return -1 with err set; on success 0 with the answer's XML in xml. */
int emu_store_change(struct emu_store *s, const char *zone_id, const struct emu_batch *batch,
                     struct buf *xml, struct emu_err *err);
/* ListResourceRecordSets faults (control API list_paging, list_max_items, list_identifier). */
enum emu_list_paging {
    EMU_LIST_NORMAL,
    EMU_LIST_CYCLE, /* pages past the first truncated one point back at it: A -> B -> A */
    EMU_LIST_STUCK  /* a truncated page points at its own first record: it never advances */
};
struct emu_list_opts {
    enum emu_list_paging paging;
    unsigned paging_epoch; /* changes whenever paging is set: the cycle starts over */
    long max_items;        /* 0: 300; else every page holds at most this many */
    int strict_identifier; /* an identifier naming no record set is InvalidInput */
};
int emu_store_list(struct emu_store *s, const char *zone_id, const char *name, const char *type,
                   const char *identifier, const char *maxitems,
                   const struct emu_list_opts *opts, struct buf *xml, struct emu_err *err);
int emu_store_get_change(struct emu_store *s, const char *change_id, long long insync_after_ms,
                         struct buf *xml, struct emu_err *err);
int emu_store_get_zone(struct emu_store *s, const char *zone_id, struct buf *xml,
                       struct emu_err *err);

/* JSON views for the control API. NULL when the zone is unknown (zone_id NULL: all zones as
 * {"zones": [...]}). Caller owns the reference. */
json_t *emu_store_dump(struct emu_store *s, const char *zone_id);
/* Direct writes that bypass the API and its limits ("a person in the console").
 * body: {"upsert": [rrset...], "delete": [{name, type, set_identifier?}...]}, or a bare array
 * (all upserts), or {"rrsets": [...]}. Returns HTTP status; *reply is a JSON object. */
int emu_store_put_json(struct emu_store *s, const char *zone_id, json_t *body, json_t **reply);
/* Remove every record set except the apex SOA and NS. Returns 0, or -1 for an unknown zone. */
int emu_store_clear(struct emu_store *s, const char *zone_id);
int emu_store_has_zone(struct emu_store *s, const char *zone_id);

/* Off by default: a batch that leaves an alias record set without its target (no record set
 * of the target's name and type) is refused. Route 53's behaviour here is not known. */
void emu_store_set_refuse_dangling(struct emu_store *s, int on);

/* A simulated DNS resolution of name/type (control API /_emu/resolve): the zone holding name is
 * unfolded into a tree of weighted choices, aliases followed to their targets (at most
 * EMU_ALIAS_DEPTH alias hops). The plan is a copy: it is sampled without the store lock. */
#define EMU_ALIAS_DEPTH 8

enum emu_rslot_kind { EMU_RSLOT_NODE, EMU_RSLOT_LEAF, EMU_RSLOT_NONE };

struct emu_rslot {
    uint64_t cum;             /* cumulative weight of the node's slots up to this one */
    enum emu_rslot_kind kind; /* a further choice, a plain record set, or no answer */
    size_t idx;               /* index into nodes (NODE) or leaves (LEAF) */
};

struct emu_rnode {
    size_t first, n; /* slots[first..first+n): the chosen group's eligible record sets */
};

struct emu_rleaf {
    char *path; /* SetIdentifiers from the queried name down, joined by '/' */
    long long ttl;
    char **values;
    size_t nvalues;
};

struct emu_rplan {
    char *name; /* canonical */
    char type[8];
    int answered; /* 0: the name and type hold no record set (every query has no answer) */
    struct emu_rnode *nodes; /* nodes[0] is the queried group */
    size_t nnodes, ncap;
    struct emu_rslot *slots;
    size_t nslots, scap;
    struct emu_rleaf *leaves;
    size_t nleaves, lcap;
};

/* Build the plan of name/type. 0 on success; -1 with an HTTP status in *status and a reason in
 * why (no zone holds the name, an alias chain longer than EMU_ALIAS_DEPTH, a tree too large).
 * *seed receives the store's seed. */
int emu_store_resolve_plan(struct emu_store *s, const char *name, const char *type,
                           struct emu_rplan *out, uint64_t *seed, int *status, char *why,
                           size_t why_len);
void emu_rplan_release(struct emu_rplan *p);
/* {"name", "type", "n", "answers": {value: count}, "records": {path: count}, "ttls": {ttl:
 * count}, "no_answer": count} from n queries drawn with the seeded PRNG; exact: the
 * probabilities instead (no "n", "exact": true). emu_resolve.c; pure. */
json_t *emu_rplan_run(const struct emu_rplan *p, uint64_t seed, long long n, int exact);

/* Names: normalize a DNS name the way Route 53 stores it (lowercase, octal escapes for bytes
 * outside [a-z0-9_-], trailing dot). -1 with a Route 53 style message in why. */
int emu_name_normalize(const char *in, char **out, char *why, size_t why_len);
int emu_type_known(const char *type);

/* --- authentication (emu_auth.c) ----------------------------------------------------------- */

struct emu_creds {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL: long-term credentials */
};

struct emu_http_header {
    const char *name;
    const char *value;
};

struct emu_auth_request {
    const char *method;
    const char *raw_path;                  /* the request-target's path exactly as received */
    const char *raw_query;                 /* after '?', exactly as received; NULL for none */
    const struct emu_http_header *headers; /* all request headers, in received order */
    size_t nheaders;
    const void *body;
    size_t body_len;
    long long now_s; /* Unix time the verifier treats as now */
};

/* Verify the SigV4 Authorization header. 0 when valid; -1 with err set (HTTP 403) otherwise.
 * Pure, thread-safe. */
int emu_auth_verify(const struct emu_creds *creds, const struct emu_auth_request *req,
                    struct emu_err *err);

/* --- faults, rate limit, statistics (emu_faults.c) ---------------------------------------- */

enum emu_icb_shape { EMU_ICB_ENVELOPE, EMU_ICB_ROOT, EMU_ICB_RANDOM };

enum emu_fault {
    EMU_FAULT_LATENCY,
    EMU_FAULT_RESET,
    EMU_FAULT_ERR5XX,
    EMU_FAULT_THROTTLE,
    EMU_FAULT_PRIOR,
    EMU_FAULT_RESET_AFTER_APPLY,
    EMU_FAULT__COUNT
};

enum emu_action_kind {
    EMU_OP_CHANGE,
    EMU_OP_LIST,
    EMU_OP_GET_CHANGE,
    EMU_OP_GET_ZONE,
    EMU_OP_UNKNOWN,
    EMU_OP__COUNT
};

struct emu_faults;

struct emu_faults *emu_faults_create(uint64_t seed);
void emu_faults_destroy(struct emu_faults *f);

/* Parse "latency_ms=50,err5xx=0.1,..." into f. -1 with a reason in why. Thread-safe. */
int emu_faults_parse_spec(struct emu_faults *f, const char *spec, char *why, size_t why_len);
/* Apply a JSON object of the same keys (plus rate, burst, change_rate, change_burst,
 * change_unit, retry_after, list_paging, list_max_items, list_identifier, insync_after_ms,
 * seed, force). -1 with a reason in why. Thread-safe. */
int emu_faults_apply_json(struct emu_faults *f, json_t *obj, char *why, size_t why_len);
json_t *emu_faults_config_json(struct emu_faults *f);

void emu_faults_set_rate(struct emu_faults *f, double rate, double burst);
void emu_faults_set_change_rate(struct emu_faults *f, double rate, double burst);
void emu_faults_set_insync_ms(struct emu_faults *f, long long ms);
long long emu_faults_insync_ms(struct emu_faults *f);

/* Milliseconds of injected latency for the next API call (0: none). Counts the fault. */
long long emu_faults_latency(struct emu_faults *f);
/* Draw whether fault k hits this call (forced faults first, then the probability). Counts it. */
int emu_faults_draw(struct emu_faults *f, enum emu_fault k);
/* Take a token from the account's request bucket; 0 when throttled (counted), with
 * *retry_after_ms the x-amz-retry-after value to send (0: none). */
int emu_faults_take_token(struct emu_faults *f, long long *retry_after_ms);
/* Charge a ChangeResourceRecordSets of `changes` Change and `records` ResourceRecord elements
 * (UPSERT counted twice) to the account's change bucket; as emu_faults_take_token. */
int emu_faults_take_changes(struct emu_faults *f, size_t changes, size_t records,
                            long long *retry_after_ms);
/* The x-amz-retry-after value for an injected Throttling (0: none). */
long long emu_faults_injected_retry_after(struct emu_faults *f);
/* Shape of the next InvalidChangeBatch answer. */
enum emu_icb_shape emu_faults_icb_shape(struct emu_faults *f);
/* One fair coin from the seeded PRNG (500 or 503 for an injected 5xx). */
int emu_faults_coin(struct emu_faults *f);
/* The ListResourceRecordSets faults now. */
void emu_faults_list_opts(struct emu_faults *f, struct emu_list_opts *out);
/* Element order of ChangeResourceRecordSets bodies: 0 strict (default), 1 lenient. */
void emu_faults_set_xml_lenient(struct emu_faults *f, int lenient);
int emu_faults_xml_lenient(struct emu_faults *f);

void emu_stats_call(struct emu_faults *f, enum emu_action_kind op, const char *outcome);
/* An applied ChangeResourceRecordSets: one call, its Change elements, the ResourceRecord values
 * of all its changes (records_applied, an UPSERT's once) and of its DELETEs (records_deleted). */
void emu_stats_change_applied(struct emu_faults *f, const struct emu_batch *batch);
void emu_stats_direct_write(struct emu_faults *f);
json_t *emu_stats_json(struct emu_faults *f);
void emu_stats_reset(struct emu_faults *f);
const char *emu_op_name(enum emu_action_kind op);

#endif
