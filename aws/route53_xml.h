/*
 * route53_xml.h: the Route 53 REST-XML wire format, as pure functions (no network, no global
 * state the caller can see).
 *
 * - Requests: the ChangeResourceRecordSets document, and its size by Route 53's batch quota so
 *   callers can split batches (at most R53_BATCH_MAX_ELEMENTS ResourceRecord elements and
 *   R53_BATCH_MAX_VALUE_CHARS characters of Value text; an UPSERT counts twice; an alias
 *   counts as one element and its DNSName's characters).
 * - Responses: ChangeResourceRecordSets/GetChange (ChangeInfo), ListResourceRecordSets,
 *   GetHostedZone, and every error document (both InvalidChangeBatch shapes).
 *
 * Parsing uses libxml2 with a hard input cap (R53XML_MAX_INPUT), no network access
 * (XML_PARSE_NONET), no entity substitution and no DTD loading: a document with a DOCTYPE or
 * an entity reference in a field is rejected. Elements are matched by local name in any
 * namespace (real responses carry the 2012-02-29 and 2012-12-12 namespaces too).
 *
 * Names that Route 53 returns (record names, NextRecordName, the zone name) are decoded from
 * its \NNN octal escapes ("\052.example.com." -> "*.example.com."), except \000, \056 ('.')
 * and \134 ('\'), which stay escaped so the decoded text is unambiguous.
 *
 * Ownership: in request structs (struct r53_change and the rrsets it points to) every string
 * belongs to the caller. Parsed results own their strings (heap); release them with the
 * matching *_release function, which accepts zeroed structs. Strings are `const char *` in
 * both cases so callers can point them at literals and buffers.
 *
 * Thread-safety: every function may run on any thread at once. (libxml2 is initialised once
 * through pthread_once on first use.)
 */
#ifndef R53REG_AWS_ROUTE53_XML_H
#define R53REG_AWS_ROUTE53_XML_H

#include <stddef.h>

#include "util/rc.h"

#define R53_XMLNS "https://route53.amazonaws.com/doc/2013-04-01/"
#define R53XML_MAX_INPUT (16u << 20)    /* responses larger than this are rejected */
#define R53_BATCH_MAX_ELEMENTS 1000     /* ResourceRecord elements in one request */
#define R53_BATCH_MAX_VALUE_CHARS 32000 /* characters of Value text in one request */
#define R53_COMMENT_MAX 256             /* ChangeBatch Comment (ResourceDescription) */
#define R53_SET_ID_MAX 128              /* SetIdentifier length */
#define R53_MAX_WEIGHT 255
#define R53_MAX_TTL 2147483647L
#define R53_LIST_MAX_ITEMS 300 /* ListResourceRecordSets maxitems */

/* --- record sets ------------------------------------------------------------------------- */

/* Routing features this module parses but does not model (flags of struct r53_rrset). A record
 * with any flag set is not a plain weighted record: callers that manage weighted records must
 * leave it alone. ALIAS, REGION and FAILOVER also have fields below (and the request builder
 * writes them); the others are only flagged (the builder refuses them). */
enum {
    R53_RRSET_F_ALIAS = 1u << 0,          /* AliasTarget */
    R53_RRSET_F_REGION = 1u << 1,         /* latency: Region */
    R53_RRSET_F_FAILOVER = 1u << 2,       /* Failover */
    R53_RRSET_F_GEO = 1u << 3,            /* GeoLocation */
    R53_RRSET_F_MULTIVALUE = 1u << 4,     /* MultiValueAnswer */
    R53_RRSET_F_TRAFFIC_POLICY = 1u << 5, /* TrafficPolicyInstanceId */
    R53_RRSET_F_CIDR = 1u << 6,           /* CidrRoutingConfig */
    R53_RRSET_F_GEOPROXIMITY = 1u << 7,   /* GeoProximityLocation */
    R53_RRSET_F_UNKNOWN = 1u << 8,        /* an element this module does not know */
};

struct r53_alias_target {
    const char *hosted_zone_id; /* NULL when the record is not an alias */
    const char *dns_name;
    int evaluate_target_health;
};

/* One resource record set (the fields Route 53's API Reference lists, in its order). */
struct r53_rrset {
    const char *name; /* parsed: as Route 53 returns it (lowercase, trailing dot), decoded */
    const char *type; /* "A", "AAAA", ... */
    const char *set_identifier; /* NULL: none (a simple record) */
    int has_weight;
    unsigned weight;      /* 0..255 when has_weight */
    const char *region;   /* NULL unless R53_RRSET_F_REGION */
    const char *failover; /* "PRIMARY"/"SECONDARY"; NULL unless R53_RRSET_F_FAILOVER */
    int has_ttl;
    long ttl;            /* 0..R53_MAX_TTL when has_ttl */
    const char **values; /* ResourceRecord/Value texts, in document order */
    size_t nvalues;
    struct r53_alias_target alias; /* when R53_RRSET_F_ALIAS */
    const char *health_check_id;   /* NULL: none */
    unsigned flags;                /* R53_RRSET_F_* */
};

/* 1 when rrset is a plain weighted record with values: SetIdentifier, Weight, TTL and at
 * least one value, and no flag set. (A HealthCheckId is allowed: a DELETE of such a record
 * must repeat it, and the builder does.) */
int r53xml_rrset_is_weighted(const struct r53_rrset *rrset);

/* Free every string of a parsed rrset and zero it. NULL and zeroed structs are fine. Never
 * call it on an rrset whose strings the caller owns. */
void r53xml_rrset_release(struct r53_rrset *rrset);

/* --- ChangeResourceRecordSets request ---------------------------------------------------- */

enum r53_action { R53_ACTION_CREATE, R53_ACTION_DELETE, R53_ACTION_UPSERT };

struct r53_change {
    enum r53_action action;
    const struct r53_rrset *rrset; /* borrowed */
};

/* "CREATE", "DELETE", "UPSERT"; "?" for an invalid value. */
const char *r53xml_action_name(enum r53_action action);

/*
 * The request document for n >= 1 changes, in the API Reference's element order:
 * ChangeBatch/Comment?/Changes/Change/{Action, ResourceRecordSet{Name, Type, SetIdentifier,
 * Weight, Region, Failover, TTL, ResourceRecords/ResourceRecord/Value, AliasTarget,
 * HealthCheckId}}, namespace R53_XMLNS, with an XML declaration, no insignificant whitespace,
 * text escaped (& < > " '). comment may be NULL (no Comment element).
 * On success *xml is a heap NUL-terminated string owned by the caller (free()) and *len (may
 * be NULL) its length. On error *xml is NULL and detail (may be NULL) says why.
 * Errors: RC_BAD_REQUEST when n == 0, an action is invalid, a name or type is missing or
 * empty, weight > 255, ttl out of range, SetIdentifier longer than 128, comment longer than
 * 256, a record has neither values nor an alias target (or both, or values without TTL), a
 * flag other than ALIAS/REGION/FAILOVER is set, or a text is not valid UTF-8 or holds a
 * control character XML 1.0 cannot carry.
 * This does not check the batch quota: see r53xml_batch_size().
 */
enum rc_code r53xml_build_change_batch(const struct r53_change *changes, size_t n,
                                       const char *comment, char **xml, size_t *len, char *detail,
                                       size_t detail_len);

/* A request's size by Route 53's quota rules. */
struct r53_batch_size {
    size_t elements;    /* ResourceRecord elements (an alias: one), UPSERT counted twice */
    size_t value_chars; /* bytes of Value text (>= characters, so conservative; an alias: its
                           DNSName's, whether or not Route 53 counts them), UPSERT x2 */
};

/* Add one change's size to *acc (callers packing batches greedily start from {0, 0}). */
void r53xml_change_size(const struct r53_change *change, struct r53_batch_size *acc);
/* The size of n changes (zero for n == 0). */
void r53xml_batch_size(const struct r53_change *changes, size_t n, struct r53_batch_size *out);
/* 1 when size is within R53_BATCH_MAX_ELEMENTS and R53_BATCH_MAX_VALUE_CHARS. */
int r53xml_batch_size_fits(const struct r53_batch_size *size);

/* --- responses ---------------------------------------------------------------------------- */

enum r53_change_status { R53_CHANGE_UNKNOWN, R53_CHANGE_PENDING, R53_CHANGE_INSYNC };

/* ChangeInfo (fixed-size fields: nothing to release). */
struct r53_change_info {
    char id[128]; /* without the "/change/" prefix */
    enum r53_change_status status;
    char status_text[16]; /* as received: "PENDING", "INSYNC" */
    char submitted_at[40];
    char comment[R53_COMMENT_MAX + 1];
};

/* One ListResourceRecordSets page (also used for a whole listing). */
struct r53_rrset_page {
    struct r53_rrset *rrsets; /* owned; every rrset owns its strings */
    size_t n;
    int is_truncated;
    const char *next_name;       /* decoded; NULL when absent */
    const char *next_type;       /* NULL when absent */
    const char *next_identifier; /* NULL when absent (records without a routing policy) */
    long max_items;              /* 0 when absent */
};

/* Free everything a page owns and zero it. NULL and zeroed pages are fine. */
void r53xml_page_release(struct r53_rrset_page *page);

struct r53_hosted_zone {
    char id[64];     /* without the "/hostedzone/" prefix */
    char name[1100]; /* decoded, as returned (trailing dot) */
    int has_rrset_count;
    long long rrset_count; /* ResourceRecordSetCount */
    int private_zone;      /* Config/PrivateZone == true */
};

/*
 * Response parsers. xml need not be NUL-terminated. On success *out is filled; on error it is
 * left zeroed/released and detail (may be NULL) says why.
 * Errors: RC_PARSE for input larger than R53XML_MAX_INPUT, malformed XML, a DOCTYPE or entity
 * reference, the wrong root element, a missing required field (ChangeInfo Id/Status;
 * IsTruncated; NextRecordName when truncated; rrset Name/Type; HostedZone Id/Name), a number
 * out of range, or a field too long for its fixed-size buffer.
 */
/* Root ChangeResourceRecordSetsResponse or GetChangeResponse. */
enum rc_code r53xml_parse_change_info(const char *xml, size_t len, struct r53_change_info *out,
                                      char *detail, size_t detail_len);
/* Root ListResourceRecordSetsResponse. Every record is kept, flagged as above. */
enum rc_code r53xml_parse_list_rrsets(const char *xml, size_t len, struct r53_rrset_page *out,
                                      char *detail, size_t detail_len);
/* Root GetHostedZoneResponse. */
enum rc_code r53xml_parse_hosted_zone(const char *xml, size_t len, struct r53_hosted_zone *out,
                                      char *detail, size_t detail_len);

/* --- errors ------------------------------------------------------------------------------- */

/* What went wrong, as one value. The first group comes from a Route 53 error Code; the second
 * has no Code (the client sets those). */
enum r53_errcode {
    R53_E_NONE = 0,
    R53_E_THROTTLING, /* Throttling, ThrottlingException, TooManyRequestsException,
                         RequestLimitExceeded, ... or a message "Rate exceeded" */
    R53_E_PRIOR_REQUEST_NOT_COMPLETE,
    R53_E_INVALID_CHANGE_BATCH,
    R53_E_INVALID_INPUT,
    R53_E_NO_SUCH_HOSTED_ZONE,
    R53_E_NO_SUCH_CHANGE,
    R53_E_ACCESS_DENIED, /* AccessDenied, AccessDeniedException */
    R53_E_SIGNATURE_DOES_NOT_MATCH,
    R53_E_INVALID_CLIENT_TOKEN_ID,
    R53_E_EXPIRED_TOKEN, /* ExpiredToken, ExpiredTokenException */
    R53_E_REQUEST_EXPIRED,
    R53_E_INVALID_SIGNATURE, /* InvalidSignature, InvalidSignatureException */
    R53_E_REQUEST_TIMEOUT,   /* RequestTimeout, RequestTimeoutException */
    R53_E_SERVICE,           /* InternalFailure, InternalError, ServiceUnavailable */
    R53_E_OTHER,             /* a Code this module does not know (see code) */
    R53_E_HTTP,              /* an HTTP error status without a parseable error document */
    R53_E_TRANSPORT,         /* connection failed, reset, DNS, TLS ... (see transport) */
    R53_E_TIMEOUT,           /* the request timed out (connect or total) */
    R53_E_BAD_RESPONSE,      /* a 2xx whose body was unparseable or too large */
    R53_E_CREDENTIALS,       /* no usable credentials */
    R53_E_RATELIMIT,         /* the local rate limiter could not admit the call in time */
    R53_E_INVALID_ARGUMENT,  /* the call's arguments were rejected before sending */
    R53_E__COUNT
};

/* A stable lowercase name ("throttling", "invalid-change-batch", ...); never NULL. */
const char *r53xml_errcode_name(enum r53_errcode code);
/* Map a Route 53 error Code (and Message, for "Rate exceeded") to an errcode: R53_E_OTHER
 * for unknown codes, R53_E_NONE for a NULL or empty code with no telling message. */
enum r53_errcode r53xml_errcode_from(const char *code, const char *message);

/* The structured error of one call. Initialise with r53xml_error_init (or zero it) and
 * release with r53xml_error_release; parsing or a client call releases the old content
 * first, so one value can be reused. */
struct r53_error {
    enum r53_errcode kind;
    int http_status; /* 0: no HTTP response */
    char *type;      /* "Sender"/"Receiver"; NULL when absent */
    char *code;      /* the Code as received; NULL when absent */
    char *message;   /* the Message as received (for the root InvalidChangeBatch shape:
                        the messages joined with "; "); NULL when absent */
    char **messages; /* every message: the <Messages> list, or the bracketed list of an
                        ErrorResponse InvalidChangeBatch split apart, or {message} */
    size_t nmessages;
    char *request_id;    /* RequestId (or the x-amzn-RequestId header); NULL when absent */
    char transport[256]; /* transport error text ("" when none); never holds secrets */
    int timeout;         /* the last attempt timed out */
    int ambiguous;       /* an earlier attempt of this call may have been applied (it was
                            sent and then failed with a timeout, transport error or 5xx):
                            a CAS conflict on a retried change may be our own change */
    unsigned attempts;   /* attempts made (client calls) */
};

void r53xml_error_init(struct r53_error *err);
/* Free the strings and reset to the init state. NULL is fine. */
void r53xml_error_release(struct r53_error *err);

/*
 * Parse an error document into err (which is released first; http_status, transport,
 * timeout, ambiguous and attempts are left as they were). Roots: ErrorResponse (Error/Type,
 * Code, Message; RequestId), InvalidChangeBatch (Messages/Message..., Message?, RequestId)
 * and a bare Error. For Code InvalidChangeBatch in the ErrorResponse shape, a Message of the
 * form "[msg1, msg2]" is split into messages at top-level ", " followed by a capitalised word
 * that is not a field label (the messages themselves hold bracketed lists, ", " before
 * lowercase clauses and ", SetIdentifier <id>").
 * Errors: RC_PARSE (as for responses, or an unknown root); err->kind is then left
 * R53_E_NONE for the caller to set.
 */
enum rc_code r53xml_parse_error(const char *xml, size_t len, struct r53_error *err);

/* 1 when one InvalidChangeBatch message says the record changed underneath a DELETE/CREATE:
 * the whole message is "Tried to delete resource record set ... but the values provided do
 * not match the current values", "Tried to delete resource record set ... but it was not
 * found" or "Tried to create resource record set ... but it already exists" (either wording
 * generation; a final '.' is allowed). */
int r53xml_message_is_cas_conflict(const char *message);

/* 1 when one InvalidChangeBatch message says a weighted set was refused because its group
 * has another TTL: "RRSet with DNS name <n> and type <t>, SetIdentifier <id> cannot be
 * created as weighted sets must contain the same TTL." (another writer's TTL). */
int r53xml_message_is_ttl_conflict(const char *message);

/* A record set one InvalidChangeBatch message names (fixed-size fields: nothing to release). */
struct r53_named_rrset {
    char name[1100]; /* as the message gives it (Route 53: lowercase, trailing dot, escaped) */
    char type[16];
    int has_set_identifier;
    char set_identifier[4 * R53_SET_ID_MAX + 1]; /* up to 128 characters of UTF-8 */
};

/*
 * The record set one InvalidChangeBatch message names, in each wording Route 53 has used:
 *   "Tried to delete resource record set [name='<n>', type='<t>', set-identifier='<id>'] but
 *    ..." (also "Tried to create ...", and without ", set-identifier='<id>'" for a set with no
 *    routing policy),
 *   "Tried to create resource record set <n> type <t>, but it already exists" (the older
 *    wording: it never gives an identifier),
 *   "RRSet with DNS name <n> and type <t>, SetIdentifier <id> cannot be created as weighted
 *    sets must contain the same TTL." (the weighted-TTL refusal).
 * An identifier ends at the first "'] " (or a final "']"), so one holding that text is not
 * read right; Route 53 does not escape it. Returns 1 and fills *out when the message names a
 * set; 0 (and *out zeroed) when it names none this way or a field does not fit *out. Pure.
 */
int r53xml_message_rrset(const char *message, struct r53_named_rrset *out);

/* 1 when err is InvalidChangeBatch and every one of its (at least one) messages is a CAS
 * conflict or a weighted-TTL conflict message: the zone differs from what the batch assumed,
 * and reading it again lets the caller write what it holds. A batch that also fails for
 * another reason is not a conflict: reloading and retrying would not fix it. */
int r53xml_error_is_cas_conflict(const struct r53_error *err);

/* 1 for the throttling family (R53_E_THROTTLING or HTTP 429). */
int r53xml_error_is_throttle(const struct r53_error *err);

/* 1 when the AWS SDKs' standard retry mode retries: throttling, PriorRequestNotComplete,
 * RequestTimeout, Internal/ServiceUnavailable, HTTP 500/502/503/504 (and 429), transport
 * errors and timeouts. Never InvalidChangeBatch, InvalidInput, NoSuchHostedZone,
 * NoSuchChange, AccessDenied, the signature/token errors, bad responses, credentials or
 * invalid arguments. */
int r53xml_error_retryable(const struct r53_error *err);

/* One line for logs and problem details: "kind=... http=... code=... message=...
 * request_id=..." (no secrets: nothing here carries any). The peer's texts (code, message,
 * transport, request_id) are written with log_quote(): the line holds no control character,
 * so it can go into a log line as is. Returns out. */
char *r53xml_error_format(const struct r53_error *err, char *out, size_t n);

/* --- helpers ------------------------------------------------------------------------------ */

/* id without a leading "/hostedzone/", "hostedzone/", "/change/" or "change/" (a pointer
 * into id). NULL stays NULL. */
const char *r53xml_strip_id_prefix(const char *id);

/* Decode Route 53's \NNN escapes (see above) into a new heap string (caller frees). */
char *r53xml_decode_name(const char *name);

/*
 * Compare two positions in ListResourceRecordSets order (the API Reference's ListResourceRecordSets): by name
 * with its labels reversed, compared as a string with the dots ("com.example.www."; case and
 * a trailing dot ignored, escapes decoded), then type, then identifier, bytewise. A NULL type
 * or identifier sorts first (a start at a name alone precedes every record of that name).
 * Returns -1, 0 or 1. Pure.
 */
int r53xml_list_order_cmp(const char *name_a, const char *type_a, const char *id_a,
                          const char *name_b, const char *type_b, const char *id_b);

#endif
