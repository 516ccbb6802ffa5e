/* sql.c - the text of every SQL statement the server runs, one per name in sql.h. */
#include <stdlib.h>
#include "sql.h"
#include "srv.h"

static const char *const texts[Q_COUNT] = {
    /* actions.c */
    [Q_UPDATE_PKEY_PUB] = "UPDATE conversations SET pkey=? WHERE uuid=?",
    [Q_ANSWER_ID_IN_USE] = "SELECT 1 FROM conversations WHERE uuid=?",
    [Q_ANSWER_DISTINCT_EXISTS] = "SELECT uuid, metadata FROM conversations WHERE pkey=? AND is_distinct=1 LIMIT 1",
    [Q_STORE_NEW_CONV_1] = "INSERT INTO conversations(uuid, created_ms, is_distinct, pkey, metadata, last_ms) VALUES(?,?,?,?,?,?)",
    [Q_STORE_NEW_CONV_2] = "INSERT OR REPLACE INTO members(conv, user_id, active, from_pos) VALUES(?,?,1,0)",
    [Q_NORMALIZE_PARTS] = "SELECT size FROM content WHERE uuid=?",
    [Q_ANSWER_MSG_ID_IN_USE] = "SELECT 1 FROM messages WHERE uuid=?",
    [Q_STORE_NEW_MESSAGE_1] = "UPDATE conversations SET next_pos=next_pos+1, last_ms=?2 WHERE uuid=?1 RETURNING next_pos-1",
    [Q_STORE_NEW_MESSAGE_2] = "INSERT INTO messages(uuid, conv, pos, sender, sent_ms, parts) VALUES(?,?,?,?,?,?)",
    [Q_STORE_NEW_MESSAGE_3] = "INSERT OR IGNORE INTO content_refs(content, msg)"
        " SELECT substr(json_extract(p.value, '$.content.id'), 18), ?1 FROM json_each(?2) p"
        " WHERE json_extract(p.value, '$.content.id') LIKE 'layer:///content/%'",
    [Q_STORE_NEW_RECEIPTS_1] = "INSERT OR REPLACE INTO rstatus(msg, user_id, status) VALUES(?,?,?)",
    [Q_STORE_NEW_RECEIPTS_2] = "UPDATE members SET unread=unread+1 WHERE conv=? AND user_id=?",
    /* admin.c */
    [Q_STORE_ANNOUNCEMENT_1] = "SELECT coalesce(max(pos),0)+1 FROM announcements",
    [Q_STORE_ANNOUNCEMENT_2] = "INSERT INTO announcements(uuid, sent_ms, sender_name, parts, pos) VALUES(?,?,?,?,?)",
    [Q_STORE_ANNOUNCEMENT_3] = "INSERT OR IGNORE INTO ann_rcpt(ann, user_id) VALUES(?,?)",
    [Q_FAULT_EXPIRE_SESSION_1] = "UPDATE sessions SET expires_ms=0 WHERE token=?",
    [Q_FAULT_EXPIRE_SESSION_2] = "UPDATE sessions SET expires_ms=0 WHERE user_id=?",
    /* announcements.c */
    [Q_LIST_ANNOUNCEMENTS_1] = "SELECT pos FROM announcements WHERE uuid=?",
    [Q_LIST_ANNOUNCEMENTS_2] = "SELECT count(*) FROM ann_rcpt WHERE user_id=? AND deleted=0",
    [Q_LIST_ANNOUNCEMENTS_3] = "SELECT a.uuid FROM announcements a JOIN ann_rcpt r ON r.ann=a.uuid AND r.user_id=?"
        " AND r.deleted=0 WHERE a.pos<? ORDER BY a.pos DESC LIMIT ?",
    [Q_ANNOUNCEMENT_ACTION_1] = "UPDATE ann_rcpt SET deleted=1 WHERE ann=? AND user_id=?",
    [Q_ANNOUNCEMENT_ACTION_2] = "UPDATE ann_rcpt SET status=?3 WHERE ann=?1 AND user_id=?2 AND status<?3",
    /* api.c */
    [Q_ROUTE_SESSIONS] = "DELETE FROM sessions WHERE token=?",
    /* auth.c */
    [Q_NEW_NONCE_1] = "DELETE FROM nonces WHERE created_ms<?",
    [Q_NEW_NONCE_2] = "INSERT INTO nonces(nonce, created_ms) VALUES(?,?)",
    [Q_SESSION_USER] = "SELECT user_id FROM sessions WHERE token=? AND expires_ms>?",
    [Q_VERIFY_IDENTITY_TOKEN] = "UPDATE nonces SET used=1 WHERE nonce=? AND used=0 AND created_ms>?",
    [Q_RESPOND_NEW_SESSION] = "INSERT INTO sessions(token, user_id, created_ms, expires_ms) VALUES(?,?,?,?)",
    /* content.c */
    [Q_CONTENT_CREATE] = "INSERT INTO content(uuid, owner, mime, size, upload_key) VALUES(?,?,?,?,?)",
    [Q_CONTENT_UPLOAD_1] = "SELECT upload_key, size FROM content WHERE uuid=? AND complete=0",
    [Q_CONTENT_UPLOAD_2] = "UPDATE content SET data=?, complete=1 WHERE uuid=?",
    [Q_CONTENT_REFRESH] = "SELECT size FROM content WHERE uuid=?",
    [Q_CONTENT_DOWNLOAD] = "SELECT data, mime FROM content WHERE uuid=? AND complete=1",
    /* conversations.c */
    [Q_LIST_CONVERSATIONS_1] = "SELECT created_ms, last_ms FROM conversations WHERE uuid=?",
    [Q_LIST_CONVERSATIONS_2] = "SELECT count(*) FROM members WHERE user_id=? AND active=1",
    [Q_LIST_CONVERSATIONS_3] = "SELECT c.uuid FROM conversations c JOIN members m ON m.conv=c.uuid"
        " AND m.user_id=?1 AND m.active=1 WHERE (c.last_ms<?2 OR (c.last_ms=?2 AND"
        " c.uuid<?3)) ORDER BY c.last_ms DESC, c.uuid DESC LIMIT ?4",
    [Q_LIST_CONVERSATIONS_4] = "SELECT c.uuid FROM conversations c JOIN members m ON m.conv=c.uuid"
        " AND m.user_id=?1 AND m.active=1 WHERE (c.created_ms<?2 OR (c.created_ms=?2 AND"
        " c.uuid<?3)) ORDER BY c.created_ms DESC, c.uuid DESC LIMIT ?4",
    [Q_PATCHABLE_STATE] = "SELECT metadata FROM conversations WHERE uuid=?",
    [Q_STORE_PATCHED_1] = "UPDATE conversations SET metadata=? WHERE uuid=?",
    [Q_STORE_PATCHED_2] = "UPDATE members SET active=0 WHERE conv=? AND user_id=?",
    [Q_STORE_PATCHED_3] = "INSERT OR REPLACE INTO members(conv, user_id, active, from_pos) VALUES(?,?,1,0)",
    [Q_DELETE_CONVERSATION_1] = "DELETE FROM rstatus WHERE msg IN (SELECT uuid FROM messages WHERE conv=?)",
    [Q_DELETE_CONVERSATION_2] = "DELETE FROM messages WHERE conv=?",
    [Q_DELETE_CONVERSATION_3] = "DELETE FROM members WHERE conv=?",
    [Q_DELETE_CONVERSATION_4] = "DELETE FROM conversations WHERE uuid=?",
    [Q_DELETE_CONVERSATION_5] = "UPDATE members SET active=0 WHERE conv=? AND user_id=?",
    [Q_DELETE_CONVERSATION_6] = "SELECT next_pos-1 FROM conversations WHERE uuid=?",
    [Q_DELETE_CONVERSATION_7] = "UPDATE members SET from_pos=? WHERE conv=? AND user_id=?",
    [Q_MARK_ALL_READ_1] = "SELECT next_pos-1 FROM conversations WHERE uuid=?",
    [Q_MARK_ALL_READ_2] = "UPDATE rstatus SET status=2 WHERE user_id=?1 AND status<2 AND msg IN"
        " (SELECT uuid FROM messages WHERE conv=?2 AND pos<=?3 AND deleted=0)",
    /* identities.c */
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
    [Q_AUDIENCE] = "SELECT ?1 UNION SELECT user_id FROM following WHERE target=?1"
        " UNION SELECT m2.user_id FROM members m1 JOIN members m2 ON m2.conv=m1.conv AND m2.active=1"
        " WHERE m1.user_id=?1 AND m1.active=1 LIMIT 100000",
    [Q_IDENTITY_UPDATE_1] = "SELECT metadata FROM identities WHERE user_id=?",
    [Q_IDENTITY_UPDATE_2] = "UPDATE identities SET metadata=? WHERE user_id=?",
    [Q_LIST_IDENTITIES_1] = "SELECT target FROM following WHERE user_id=? ORDER BY target LIMIT ?",
    [Q_LIST_IDENTITIES_2] = "SELECT count(*) FROM following WHERE user_id=?",
    [Q_FOLLOW_1] = "INSERT OR IGNORE INTO following(user_id, target) VALUES(?,?)",
    [Q_FOLLOW_2] = "DELETE FROM following WHERE user_id=? AND target=?",
    /* messages.c */
    [Q_LIST_MESSAGES_1] = "SELECT pos FROM messages WHERE uuid=? AND conv=?",
    [Q_LIST_MESSAGES_2] = "SELECT count(*) FROM messages m WHERE conv=?1 AND deleted=0 AND pos>?2 AND NOT EXISTS"
        " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=?3 AND r.hidden=1)",
    [Q_LIST_MESSAGES_3] = "SELECT uuid FROM messages m WHERE conv=?1 AND deleted=0 AND pos>?2 AND pos<?4 AND NOT EXISTS"
        " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=?3 AND r.hidden=1)"
        " ORDER BY pos DESC LIMIT ?5",
    [Q_DELETE_MESSAGE_1] = "UPDATE messages SET deleted=1 WHERE uuid=?",
    [Q_DELETE_MESSAGE_2] = "INSERT INTO rstatus(msg, user_id, status, hidden) VALUES(?1,?2,2,1)"
        " ON CONFLICT(msg, user_id) DO UPDATE SET hidden=1",
    [Q_MESSAGE_RECEIPT_1] = "SELECT status FROM rstatus WHERE msg=? AND user_id=?",
    [Q_MESSAGE_RECEIPT_2] = "INSERT INTO rstatus(msg, user_id, status) VALUES(?1,?2,?3)"
        " ON CONFLICT(msg, user_id) DO UPDATE SET status=?3",
    /* model.c */
    [Q_ENSURE_IDENTITY] = "INSERT OR IGNORE INTO identities(user_id, display_name) VALUES(?1, ?1)",
    [Q_IDENTITY_EXISTS] = "SELECT 1 FROM identities WHERE user_id=?",
    [Q_W_BASIC_IDENTITY] = "SELECT display_name, avatar_url FROM identities WHERE user_id=?",
    [Q_W_FULL_IDENTITY] = "SELECT display_name, avatar_url, first_name, last_name, email_address, phone_number, public_key,"
        " type, metadata FROM identities WHERE user_id=?",
    [Q_CONV_MEMBER] = "SELECT from_pos FROM members WHERE conv=? AND user_id=? AND active=1",
    [Q_CONV_MEMBERS] = "SELECT user_id FROM members WHERE conv=? AND active=1 ORDER BY rowid",
    [Q_W_MESSAGE_1] = "SELECT conv, pos, sender, sent_ms, parts FROM messages WHERE uuid=? AND deleted=0",
    [Q_W_MESSAGE_2] = "SELECT user_id, status FROM rstatus WHERE msg=? ORDER BY rowid",
    [Q_MSG_VISIBLE_1] = "SELECT conv, pos FROM messages WHERE uuid=? AND deleted=0",
    [Q_MSG_VISIBLE_2] = "SELECT hidden FROM rstatus WHERE msg=? AND user_id=?",
    [Q_CONTENT_VISIBLE_1] = "SELECT owner FROM content WHERE uuid=? AND complete=1",
    [Q_CONTENT_VISIBLE_2] = "SELECT msg FROM content_refs WHERE content=?",
    [Q_CONV_LAST_MESSAGE] = "SELECT uuid FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
        " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)"
        " ORDER BY pos DESC LIMIT 1",
    [Q_CONV_UNREAD] = "SELECT unread FROM members WHERE conv=? AND user_id=?",
    [Q_CONV_UNREAD_RECOUNT] = "UPDATE members SET unread=(SELECT count(*) FROM messages m JOIN rstatus r ON r.msg=m.uuid AND r.user_id=?1"
        " WHERE m.conv=?2 AND m.deleted=0 AND m.pos>members.from_pos AND r.status<2 AND r.hidden=0 AND m.sender<>?1)"
        " WHERE conv=?2 AND user_id=?1",
    [Q_W_CONVERSATION_1] = "SELECT created_ms, is_distinct, metadata FROM conversations WHERE uuid=?",
    [Q_W_CONVERSATION_2] = "SELECT count(*) FROM messages m WHERE conv=? AND deleted=0 AND pos>? AND NOT EXISTS"
        " (SELECT 1 FROM rstatus r WHERE r.msg=m.uuid AND r.user_id=? AND r.hidden=1)",
    [Q_W_ANNOUNCEMENT] = "SELECT a.sent_ms, a.sender_name, a.parts, a.pos, r.status FROM announcements a JOIN ann_rcpt r"
        " ON r.ann=a.uuid AND r.user_id=? AND r.deleted=0 WHERE a.uuid=?",
    [Q_NEXT_EVENT_TS] = "SELECT MAX(ts_ms) FROM events WHERE user_id=?",
    [Q_EMIT] = "INSERT INTO events(user_id, ts_ms, kind, op, otype, oid, data) VALUES(?,?,?,?,?,?,?)",
    /* ws.c */
    [Q_SRV_CONN_OPEN] = "SELECT expires_ms FROM sessions WHERE token=?",
    [Q_SRV_REPLAY_PUMP] = "SELECT seq, ts_ms, kind, op, otype, oid, data FROM events"
        " WHERE user_id=? AND ts_ms>=? AND seq>? ORDER BY seq LIMIT ?",
    [Q_PRESENCE_FOLLOW_SOCKETS_1] = "SELECT presence FROM identities WHERE user_id=?",
    [Q_PRESENCE_FOLLOW_SOCKETS_2] = "UPDATE identities SET last_seen_ms=? WHERE user_id=?",
    [Q_PRESENCE_SYNC] = "SELECT presence, last_seen_ms FROM identities WHERE user_id=?",
    [Q_PRESENCE_PUSH] = "SELECT DISTINCT m2.user_id FROM members m1 JOIN members m2 ON m2.conv=m1.conv AND m2.active=1"
        " WHERE m1.user_id=?1 AND m1.active=1 UNION SELECT ?1 LIMIT 10000",
    [Q_PRESENCE_UPDATE] = "UPDATE identities SET presence=?, last_seen_ms=? WHERE user_id=?",
};

sqlite3_stmt *sql(sql_id id)
{
    if ((unsigned)id >= Q_COUNT || !texts[id]) abort(); /* a name without text is a bug */
    return store_prep(texts[id]);
}

const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}
