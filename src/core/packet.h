/*
 * packet.h - decodes one Layer WebSocket frame into a validated, typed packet.
 *
 * Covers everything docs/protocol.md section 5 and Layer's change-packet docs show:
 * change (create / delete with mode and from_position / update and patch),
 * response (success or error object), signal (typing indicator), operation
 * (Conversation.mark_all_read), and the client-to-server request. Anything
 * else is rejected with a message that names the field and the problem.
 */
#ifndef LAYER_PACKET_H
#define LAYER_PACKET_H

#include "api.h"

#include "json.h"

LAYER_BEGIN_DECLS

typedef enum { PKT_CHANGE = 1, PKT_RESPONSE, PKT_SIGNAL, PKT_OPERATION, PKT_REQUEST } pkt_type;
typedef enum { CHG_CREATE = 1, CHG_DELETE, CHG_PATCH } pkt_change_op; /* "update" and "patch" are both CHG_PATCH */
typedef enum { OBJ_CONVERSATION = 1, OBJ_MESSAGE, OBJ_ANNOUNCEMENT, OBJ_IDENTITY } pkt_object_type;

typedef struct {
    size_t max_bytes;   /* default 1 MiB */
    uint32_t max_depth; /* default 32 */
} pkt_limits;

#define PKT_DEFAULT_MAX_BYTES (1024 * 1024)
#define PKT_DEFAULT_MAX_DEPTH 32

typedef struct {
    const jv *s; /* a JSON string value, or NULL */
} pkt_str;

typedef struct {
    jv_doc *doc; /* owns everything below */
    pkt_type type;
    int64_t counter;     /* -1 for requests */
    const jv *timestamp; /* string, NULL for requests */
    int64_t time_ms;     /* timestamp as Unix milliseconds */
    const jv *body;

    /* change */
    pkt_change_op change_op;
    const jv *change_op_name; /* "create", "delete", "update" or "patch" as sent */
    pkt_object_type object_type;
    const jv *object; /* {type, id, url} */
    const jv *object_id;
    const jv *data; /* create: object; delete: {mode,...} or null; patch: operations */
    const jv *mode; /* delete: "all_participants" / "my_devices" */
    int has_from_position;
    double from_position;

    /* response / request / operation */
    const jv *request_id;
    const jv *method;
    int success;
    const jv *error; /* response with success false: {id, code, message, ...} */

    /* signal */
    const jv *signal_type; /* "typing_indicator" */
    const jv *action;      /* "started" / "paused" / "finished" */
    const jv *sender;

    /* operation: Conversation.mark_all_read */
    double position;
    const jv *identity;
} pkt;

typedef struct {
    int out_of_memory; /* 1: the frame may be fine, an allocation failed */
    char message[200];
} pkt_error;

/* Returns 1 and fills out (free with pkt_free), or 0 and fills err. */
int pkt_decode(const char *text, size_t len, const pkt_limits *limits, pkt *out, pkt_error *err);
/* The same, parsing into scratch (reset first); out->doc stays NULL and the
 * packet is valid until scratch is reused or freed. */
int pkt_decode_reuse(jv_doc *scratch, const char *text, size_t len, const pkt_limits *limits, pkt *out, pkt_error *err);
void pkt_free(pkt *p);

const char *pkt_type_name(pkt_type t);
const char *pkt_object_type_name(pkt_object_type t);
const char *pkt_object_type_collection(pkt_object_type t); /* "conversations", ...: /<it>/<uuid> */

/* "2014-09-15T04:45:00+00:00", "2015-01-19T09:15:43.123Z" -> Unix ms. */
int pkt_parse_time(const char *s, size_t len, int64_t *ms);

LAYER_END_DECLS
#endif
