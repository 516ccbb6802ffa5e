/* sql.h - every SQL statement of the server, by name (the texts are in sql.c). */
#ifndef LAYER_SRV_SQL_H
#define LAYER_SRV_SQL_H
#include <sqlite3.h>

/* By table: Q_<TABLE>_<what it does>. A name used in several places is a statement whose one
 * row each of them reads before anything else can reset it. */
typedef enum {
    /* conversations */
    Q_CONV_SET_PKEY,
    Q_CONV_EXISTS,
    Q_CONV_FIND_DISTINCT,
    Q_CONV_INSERT,
    Q_CONV_TAKE_POS,
    Q_CONV_TIMES,
    Q_CONV_COUNT_FOR_USER,
    Q_CONV_PAGE_BY_LAST,
    Q_CONV_PAGE_BY_CREATED,
    Q_CONV_METADATA,
    Q_CONV_SET_METADATA,
    Q_CONV_DELETE,
    Q_CONV_LAST_POS,
    Q_CONV_GET,
    /* members (who takes part in which conversation) */
    Q_MEMBER_ADD,
    Q_MEMBER_UNREAD_INC,
    Q_MEMBER_DEACTIVATE,
    Q_MEMBER_DELETE_CONV,
    Q_MEMBER_SET_FROM_POS,
    Q_MEMBER_FROM_POS,
    Q_MEMBERS_ACTIVE,
    Q_MEMBER_UNREAD,
    Q_MEMBER_UNREAD_RECOUNT,
    /* messages */
    Q_MSG_EXISTS,
    Q_MSG_INSERT,
    Q_MSG_DELETE_CONV,
    Q_MSG_POS_IN_CONV,
    Q_MSG_COUNT_VISIBLE,
    Q_MSG_PAGE,
    Q_MSG_DELETE,
    Q_MSG_GET,
    Q_MSG_PLACE,
    Q_MSG_LAST_VISIBLE,
    Q_MSG_COUNT_VISIBLE_TOTAL,
    /* rstatus (recipient status of messages, and hidden messages) */
    Q_RSTATUS_SET,
    Q_RSTATUS_DELETE_CONV,
    Q_RSTATUS_MARK_ALL_READ,
    Q_RSTATUS_HIDE,
    Q_RSTATUS_GET,
    Q_RSTATUS_RAISE,
    Q_RSTATUS_OF_MSG,
    Q_RSTATUS_HIDDEN,
    /* content and content_refs */
    Q_CONTENT_SIZE,
    Q_CONTENT_REFS_ADD,
    Q_CONTENT_INSERT,
    Q_CONTENT_PENDING,
    Q_CONTENT_SET_DATA,
    Q_CONTENT_DATA,
    Q_CONTENT_OWNER,
    Q_CONTENT_REFS_OF,
    /* identities */
    Q_IDENTITY_GET_DISPLAY_NAME,
    Q_IDENTITY_SET_DISPLAY_NAME,
    Q_IDENTITY_GET_AVATAR_URL,
    Q_IDENTITY_SET_AVATAR_URL,
    Q_IDENTITY_GET_FIRST_NAME,
    Q_IDENTITY_SET_FIRST_NAME,
    Q_IDENTITY_GET_LAST_NAME,
    Q_IDENTITY_SET_LAST_NAME,
    Q_IDENTITY_GET_EMAIL_ADDRESS,
    Q_IDENTITY_SET_EMAIL_ADDRESS,
    Q_IDENTITY_GET_PHONE_NUMBER,
    Q_IDENTITY_SET_PHONE_NUMBER,
    Q_IDENTITY_GET_PUBLIC_KEY,
    Q_IDENTITY_SET_PUBLIC_KEY,
    Q_IDENTITY_GET_TYPE,
    Q_IDENTITY_SET_TYPE,
    Q_IDENTITY_AUDIENCE,
    Q_IDENTITY_GET_METADATA,
    Q_IDENTITY_SET_METADATA,
    Q_IDENTITY_ENSURE,
    Q_IDENTITY_EXISTS,
    Q_IDENTITY_BASIC,
    Q_IDENTITY_FULL,
    Q_IDENTITY_PRESENCE,
    Q_IDENTITY_SET_LAST_SEEN,
    Q_IDENTITY_PRESENCE_SEEN,
    Q_IDENTITY_SET_PRESENCE,
    /* presence */
    Q_PRESENCE_PEERS,
    /* following */
    Q_FOLLOWING_PAGE,
    Q_FOLLOWING_COUNT,
    Q_FOLLOWING_ADD,
    Q_FOLLOWING_DELETE,
    /* announcements and their recipients */
    Q_ANN_NEXT_POS,
    Q_ANN_INSERT,
    Q_ANN_RCPT_ADD,
    Q_ANN_POS,
    Q_ANN_COUNT_FOR_USER,
    Q_ANN_PAGE,
    Q_ANN_RCPT_DELETE,
    Q_ANN_RCPT_RAISE,
    Q_ANN_GET,
    /* sessions */
    Q_SESSION_EXPIRE,
    Q_SESSION_EXPIRE_USER,
    Q_SESSION_DELETE,
    Q_SESSION_USER,
    Q_SESSION_INSERT,
    Q_SESSION_EXPIRES,
    /* nonces */
    Q_NONCE_PRUNE,
    Q_NONCE_INSERT,
    Q_NONCE_USE,
    /* events (the replay log) */
    Q_EVENT_LAST_TS,
    Q_EVENT_INSERT,
    Q_EVENT_BATCH,
    Q_COUNT
} sql_id;

/* The statement, prepared on first use and cached, reset and unbound. */
sqlite3_stmt *sql(sql_id id);
/* Column i as text (NULL for SQL NULL); s bound as text (NULL binds NULL). */
const char *col_text(sqlite3_stmt *st, int i);
void bind_text(sqlite3_stmt *st, int i, const char *s);

#endif
