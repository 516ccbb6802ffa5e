/* sql.c - the text of every SQL statement the server runs, one per name in sql.h. */
#include "sql.h"
#include "srv.h"
#include <stdlib.h>

static const char *const texts[Q_COUNT] = {
    /* conversations */
    [Q_CONV_SET_PKEY] = "UPDATE conversations SET pkey=? WHERE uuid=?",
    [Q_CONV_EXISTS] = "SELECT 1 FROM conversations WHERE uuid=?",
    [Q_CONV_FIND_DISTINCT] = "SELECT uuid, metadata FROM conversations WHERE pkey=? AND is_distinct=1 LIMIT 1",
    [Q_CONV_INSERT] =
        "INSERT INTO conversations(uuid, created_ms, is_distinct, pkey, metadata, last_ms) VALUES(?,?,?,?,?,?)",
    [Q_CONV_TAKE_POS] = "UPDATE conversations SET next_pos=next_pos+1, last_ms=?2 WHERE uuid=?1 RETURNING next_pos-1",
    [Q_CONV_TIMES] = "SELECT created_ms, last_ms FROM conversations WHERE uuid=?",
    [Q_CONV_COUNT_FOR_USER] = "SELECT count(*) FROM members WHERE user_id=? AND active=1",
    [Q_CONV_PAGE_BY_LAST] = "SELECT c.uuid FROM conversations c JOIN members m ON m.conv=c.uuid"
                            " AND m.user_id=?1 AND m.active=1 WHERE (c.last_ms<?2 OR (c.last_ms=?2 AND"
                            " c.uuid<?3)) ORDER BY c.last_ms DESC, c.uuid DESC LIMIT ?4",
    [Q_CONV_PAGE_BY_CREATED] = "SELECT c.uuid FROM conversations c JOIN members m ON m.conv=c.uuid"
                               " AND m.user_id=?1 AND m.active=1 WHERE (c.created_ms<?2 OR (c.created_ms=?2 AND"
                               " c.uuid<?3)) ORDER BY c.created_ms DESC, c.uuid DESC LIMIT ?4",
    [Q_CONV_METADATA] = "SELECT metadata FROM conversations WHERE uuid=?",
    [Q_CONV_SET_METADATA] = "UPDATE conversations SET metadata=? WHERE uuid=?",
    [Q_CONV_DELETE] = "DELETE FROM conversations WHERE uuid=?",
    [Q_CONV_LAST_POS] = "SELECT next_pos-1 FROM conversations WHERE uuid=?",
    [Q_CONV_GET] = "SELECT created_ms, is_distinct, metadata FROM conversations WHERE uuid=?",
    /* members (who takes part in which conversation) */
    [Q_MEMBER_ADD] = "INSERT OR REPLACE INTO members(conv, user_id, active, from_pos) VALUES(?,?,1,0)",
    [Q_MEMBER_UNREAD_INC] = "UPDATE members SET unread=unread+1 WHERE conv=? AND user_id=?",
    [Q_MEMBER_DEACTIVATE] = "UPDATE members SET active=0 WHERE conv=? AND user_id=?",
    [Q_MEMBER_DELETE_CONV] = "DELETE FROM members WHERE conv=?",
    [Q_MEMBER_SET_FROM_POS] = "UPDATE members SET from_pos=? WHERE conv=? AND user_id=?",
    [Q_MEMBER_FROM_POS] = "SELECT from_pos FROM members WHERE conv=? AND user_id=? AND active=1",
    [Q_MEMBERS_ACTIVE] = "SELECT user_id FROM members WHERE conv=? AND active=1 ORDER BY rowid",
    [Q_MEMBER_UNREAD] = "SELECT unread FROM members WHERE conv=? AND user_id=?",
    [Q_MEMBER_UNREAD_RECOUNT] =
        "UPDATE members SET unread=(SELECT count(*) FROM messages m JOIN rstatus r ON r.msg=m.uuid AND r.user_id=?1"
        " WHERE m.conv=?2 AND m.deleted=0 AND m.pos>members.from_pos AND r.status<2 AND r.hidden=0 AND m.sender<>?1)"
        " WHERE conv=?2 AND user_id=?1",
    /* messages */
    [Q_MSG_EXISTS] = "SELECT 1 FROM messages WHERE uuid=?",
    [Q_MSG_INSERT] = "INSERT INTO messages(uuid, conv, pos, sender, sent_ms, parts) VALUES(?,?,?,?,?,?)",
    [Q_MSG_DELETE_CONV] = "DELETE FROM messages WHERE conv=?",
    [Q_MSG_POS_IN_CONV] = "SELECT pos FROM messages WHERE uuid=? AND conv=?",
    [Q_MSG_COUNT_VISIBLE] = "SELECT count(*) FROM messages m WHERE conv=?1 AND deleted=0 AND pos>?2 AND NOT EXISTS"
                            " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=?3 AND r.hidden=1)",
    [Q_MSG_PAGE] = "SELECT uuid FROM messages m WHERE conv=?1 AND deleted=0 AND pos>?2 AND pos<?4 AND NOT EXISTS"
                   " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=?3 AND r.hidden=1)"
                   " ORDER BY pos DESC LIMIT ?5",
    [Q_MSG_DELETE] = "UPDATE messages SET deleted=1 WHERE uuid=?",
    [Q_MSG_GET] = "SELECT conv, pos, sender, sent_ms, parts FROM messages WHERE uuid=? AND deleted=0",
    [Q_MSG_PLACE] = "SELECT conv, pos FROM messages WHERE uuid=? AND deleted=0",
    [Q_MSG_LAST_VISIBLE] = "SELECT uuid FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
                           " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)"
                           " ORDER BY pos DESC LIMIT 1",
    [Q_MSG_COUNT_VISIBLE_TOTAL] = "SELECT count(*) FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
                                  " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)",
    /* rstatus (recipient status of messages, and hidden messages) */
    [Q_RSTATUS_SET] = "INSERT OR REPLACE INTO rstatus(msg, user_id, status) VALUES(?,?,?)",
    [Q_RSTATUS_DELETE_CONV] = "DELETE FROM rstatus WHERE msg IN (SELECT uuid FROM messages WHERE conv=?)",
    [Q_RSTATUS_MARK_ALL_READ] = "UPDATE rstatus SET status=2 WHERE user_id=?1 AND status<2 AND msg IN"
                                " (SELECT uuid FROM messages WHERE conv=?2 AND pos<=?3 AND deleted=0)",
    [Q_RSTATUS_HIDE] = "INSERT INTO rstatus(msg, user_id, status, hidden) VALUES(?1,?2,2,1)"
                       " ON CONFLICT(msg, user_id) DO UPDATE SET hidden=1",
    [Q_RSTATUS_GET] = "SELECT status FROM rstatus WHERE msg=? AND user_id=?",
    [Q_RSTATUS_RAISE] = "INSERT INTO rstatus(msg, user_id, status) VALUES(?1,?2,?3)"
                        " ON CONFLICT(msg, user_id) DO UPDATE SET status=?3",
    [Q_RSTATUS_OF_MSG] = "SELECT user_id, status FROM rstatus WHERE msg=? ORDER BY rowid",
    [Q_RSTATUS_HIDDEN] = "SELECT hidden FROM rstatus WHERE msg=? AND user_id=?",
    /* content and content_refs */
    [Q_CONTENT_SIZE] = "SELECT size FROM content WHERE uuid=?",
    [Q_CONTENT_REFS_ADD] = "INSERT OR IGNORE INTO content_refs(content, msg)"
                           " SELECT substr(json_extract(p.value, '$.content.id'), 18), ?1 FROM json_each(?2) p"
                           " WHERE json_extract(p.value, '$.content.id') LIKE 'layer:///content/%'",
    [Q_CONTENT_INSERT] = "INSERT INTO content(uuid, owner, mime, size, upload_key) VALUES(?,?,?,?,?)",
    [Q_CONTENT_PENDING] = "SELECT upload_key, size FROM content WHERE uuid=? AND complete=0",
    [Q_CONTENT_SET_DATA] = "UPDATE content SET data=?, complete=1 WHERE uuid=?",
    [Q_CONTENT_DATA] = "SELECT data, mime FROM content WHERE uuid=? AND complete=1",
    [Q_CONTENT_OWNER] = "SELECT owner FROM content WHERE uuid=? AND complete=1",
    [Q_CONTENT_REFS_OF] = "SELECT msg FROM content_refs WHERE content=?",
    /* identities */
    [Q_IDENTITY_GET_DISPLAY_NAME] = "SELECT display_name FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_DISPLAY_NAME] = "UPDATE identities SET display_name=? WHERE user_id=?",
    [Q_IDENTITY_GET_AVATAR_URL] = "SELECT avatar_url FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_AVATAR_URL] = "UPDATE identities SET avatar_url=? WHERE user_id=?",
    [Q_IDENTITY_GET_FIRST_NAME] = "SELECT first_name FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_FIRST_NAME] = "UPDATE identities SET first_name=? WHERE user_id=?",
    [Q_IDENTITY_GET_LAST_NAME] = "SELECT last_name FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_LAST_NAME] = "UPDATE identities SET last_name=? WHERE user_id=?",
    [Q_IDENTITY_GET_EMAIL_ADDRESS] = "SELECT email_address FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_EMAIL_ADDRESS] = "UPDATE identities SET email_address=? WHERE user_id=?",
    [Q_IDENTITY_GET_PHONE_NUMBER] = "SELECT phone_number FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_PHONE_NUMBER] = "UPDATE identities SET phone_number=? WHERE user_id=?",
    [Q_IDENTITY_GET_PUBLIC_KEY] = "SELECT public_key FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_PUBLIC_KEY] = "UPDATE identities SET public_key=? WHERE user_id=?",
    [Q_IDENTITY_GET_TYPE] = "SELECT type FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_TYPE] = "UPDATE identities SET type=? WHERE user_id=?",
    [Q_IDENTITY_AUDIENCE] =
        "SELECT ?1 UNION SELECT user_id FROM following WHERE target=?1"
        " UNION SELECT m2.user_id FROM members m1 JOIN members m2 ON m2.conv=m1.conv AND m2.active=1"
        " WHERE m1.user_id=?1 AND m1.active=1 LIMIT 100000",
    [Q_IDENTITY_GET_METADATA] = "SELECT metadata FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_METADATA] = "UPDATE identities SET metadata=? WHERE user_id=?",
    [Q_IDENTITY_ENSURE] = "INSERT OR IGNORE INTO identities(user_id, display_name) VALUES(?1, ?1)",
    [Q_IDENTITY_EXISTS] = "SELECT 1 FROM identities WHERE user_id=?",
    [Q_IDENTITY_BASIC] = "SELECT display_name, avatar_url FROM identities WHERE user_id=?",
    [Q_IDENTITY_FULL] =
        "SELECT display_name, avatar_url, first_name, last_name, email_address, phone_number, public_key,"
        " type, metadata FROM identities WHERE user_id=?",
    [Q_IDENTITY_PRESENCE] = "SELECT presence FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_LAST_SEEN] = "UPDATE identities SET last_seen_ms=? WHERE user_id=?",
    [Q_IDENTITY_PRESENCE_SEEN] = "SELECT presence, last_seen_ms FROM identities WHERE user_id=?",
    [Q_IDENTITY_SET_PRESENCE] = "UPDATE identities SET presence=?, last_seen_ms=? WHERE user_id=?",
    /* presence */
    [Q_PRESENCE_PEERS] = "SELECT DISTINCT m2.user_id FROM members m1 JOIN members m2 ON m2.conv=m1.conv AND m2.active=1"
                         " WHERE m1.user_id=?1 AND m1.active=1 UNION SELECT ?1 LIMIT 10000",
    /* following */
    [Q_FOLLOWING_PAGE] = "SELECT target FROM following WHERE user_id=? ORDER BY target LIMIT ?",
    [Q_FOLLOWING_COUNT] = "SELECT count(*) FROM following WHERE user_id=?",
    [Q_FOLLOWING_ADD] = "INSERT OR IGNORE INTO following(user_id, target) VALUES(?,?)",
    [Q_FOLLOWING_DELETE] = "DELETE FROM following WHERE user_id=? AND target=?",
    /* announcements and their recipients */
    [Q_ANN_NEXT_POS] = "SELECT coalesce(max(pos),0)+1 FROM announcements",
    [Q_ANN_INSERT] = "INSERT INTO announcements(uuid, sent_ms, sender_name, parts, pos) VALUES(?,?,?,?,?)",
    [Q_ANN_RCPT_ADD] = "INSERT OR IGNORE INTO ann_rcpt(ann, user_id) VALUES(?,?)",
    [Q_ANN_POS] = "SELECT pos FROM announcements WHERE uuid=?",
    [Q_ANN_COUNT_FOR_USER] = "SELECT count(*) FROM ann_rcpt WHERE user_id=? AND deleted=0",
    [Q_ANN_PAGE] = "SELECT a.uuid FROM announcements a JOIN ann_rcpt r ON r.ann=a.uuid AND r.user_id=?"
                   " AND r.deleted=0 WHERE a.pos<? ORDER BY a.pos DESC LIMIT ?",
    [Q_ANN_RCPT_DELETE] = "UPDATE ann_rcpt SET deleted=1 WHERE ann=? AND user_id=?",
    [Q_ANN_RCPT_RAISE] = "UPDATE ann_rcpt SET status=?3 WHERE ann=?1 AND user_id=?2 AND status<?3",
    [Q_ANN_GET] = "SELECT a.sent_ms, a.sender_name, a.parts, a.pos, r.status FROM announcements a JOIN ann_rcpt r"
                  " ON r.ann=a.uuid AND r.user_id=? AND r.deleted=0 WHERE a.uuid=?",
    /* sessions */
    [Q_SESSION_EXPIRE] = "UPDATE sessions SET expires_ms=0 WHERE token=?",
    [Q_SESSION_EXPIRE_USER] = "UPDATE sessions SET expires_ms=0 WHERE user_id=?",
    [Q_SESSION_DELETE] = "DELETE FROM sessions WHERE token=?",
    [Q_SESSION_USER] = "SELECT user_id FROM sessions WHERE token=? AND expires_ms>?",
    [Q_SESSION_INSERT] = "INSERT INTO sessions(token, user_id, created_ms, expires_ms) VALUES(?,?,?,?)",
    [Q_SESSION_EXPIRES] = "SELECT expires_ms FROM sessions WHERE token=?",
    /* nonces */
    [Q_NONCE_PRUNE] = "DELETE FROM nonces WHERE created_ms<?",
    [Q_NONCE_INSERT] = "INSERT INTO nonces(nonce, created_ms) VALUES(?,?)",
    [Q_NONCE_USE] = "UPDATE nonces SET used=1 WHERE nonce=? AND used=0 AND created_ms>?",
    /* events (the replay log) */
    [Q_EVENT_LAST_TS] = "SELECT MAX(ts_ms) FROM events WHERE user_id=?",
    [Q_EVENT_INSERT] = "INSERT INTO events(user_id, ts_ms, kind, op, otype, oid, data) VALUES(?,?,?,?,?,?,?)",
    [Q_EVENT_BATCH] = "SELECT seq, ts_ms, kind, op, otype, oid, data FROM events"
                      " WHERE user_id=? AND ts_ms>=? AND seq>? ORDER BY seq LIMIT ?",
};

sqlite3_stmt *sql(sql_id id)
{
    if ((unsigned)id >= Q_COUNT || !texts[id]) abort(); /* a name without text is a bug */
    return store_prep(texts[id]);
}

const char *col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

void bind_text(sqlite3_stmt *st, int i, const char *s) { sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT); }
