/**
 * Schema version 2: labels, lineage, trims and forks that share rows.
 *
 * A session's messages live in segments: rows keyed (owner, tenant, segment, seq), where the
 * owner is the session that wrote them and the segment a number from `sessionstore.segments`
 * (0 for every session from before this version, whose rows keep it). A session appends to its
 * head segment, from seq `head_base` on; `sessionstore.pieces` lists what precedes it: ranges
 * [from_seq, to_seq) of other segments (its source's, for a fork). A fork copies its source's
 * pieces (a few rows however long the source) and adds the source's head up to the fork point.
 * Rows are deleted only once nothing references them: `release` deletes a range's rows that no
 * piece and no head still covers, and every change that drops a reference releases its range.
 * A rewind over a head that a fork shares starts a new head instead of deleting shared rows.
 *
 * The old `append_batch` is dropped, so a server of version 1 still running fails its appends
 * (UNAVAILABLE) instead of writing rows outside the segments.
 */
export const LABELS_FORKS_TRIMS = {
  version: 2,
  description: "labels, lineage, first kept seq, segments shared by forks, message times",
  sql: `
ALTER TABLE sessionstore.sessions
  ADD COLUMN labels jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN labels_revision bigint NOT NULL DEFAULT 0,
  ADD COLUMN parent_session_id text COLLATE "C",
  ADD COLUMN parent_seq bigint,
  ADD COLUMN first_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN head_segment bigint NOT NULL DEFAULT 0,
  ADD COLUMN head_base bigint NOT NULL DEFAULT 0;
-- Label selectors, from the sessions a selector's value names (only labelled sessions are in
-- it). updated_at_ms is deliberately in no index: every append sets it, and with no indexed
-- column changed the row's update is a HOT one that touches no index at all; a listing newest
-- first sorts what the selector (or the tenant) holds, keeping the first page's rows only.
-- Room left on each page of sessions keeps those updates on their page.
CREATE INDEX sessions_by_label ON sessionstore.sessions USING gin (labels) WHERE labels <> '{}';
ALTER TABLE sessionstore.sessions SET (fillfactor = 80);

CREATE SEQUENCE sessionstore.segments START 1;

-- Existing rows get segment 0 and, as their append time, this migration's (never earlier than
-- the truth, so retention by age never drops them early); both without rewriting the table.
ALTER TABLE sessionstore.messages
  ADD COLUMN segment bigint NOT NULL DEFAULT 0,
  ADD COLUMN appended_at_ms bigint NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
ALTER TABLE sessionstore.messages
  ALTER COLUMN appended_at_ms SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
ALTER TABLE sessionstore.messages
  DROP CONSTRAINT messages_pkey, ADD PRIMARY KEY (session_id, tenant, segment, seq);

CREATE TABLE sessionstore.pieces (
  session_id text COLLATE "C" NOT NULL,
  tenant text COLLATE "C" NOT NULL,
  from_seq bigint NOT NULL,
  to_seq bigint NOT NULL,
  owner text COLLATE "C" NOT NULL,
  segment bigint NOT NULL,
  PRIMARY KEY (session_id, tenant, from_seq)
);
CREATE INDEX pieces_by_segment ON sessionstore.pieces (owner, tenant, segment);

-- Serializes the transactions that drop references to a segment (until commit), so that two
-- dropping the last two see each other's, and one of them deletes the rows.
CREATE FUNCTION sessionstore.lock_segment(t text, seg_owner text, seg bigint)
RETURNS void LANGUAGE sql AS $fn$
  SELECT pg_advisory_xact_lock(hashtextextended(t || '/' || seg_owner || '/' || seg, 0))
$fn$;

-- Deletes the rows [lo, hi) of a segment that no piece and no session's head references.
CREATE FUNCTION sessionstore.release(t text, seg_owner text, seg bigint, lo bigint, hi bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM sessionstore.lock_segment(t, seg_owner, seg);
  -- A statement after the lock: under READ COMMITTED it sees what the lock waited for.
  DELETE FROM sessionstore.messages m
  WHERE m.session_id = seg_owner AND m.tenant = t AND m.segment = seg AND m.seq >= lo AND m.seq < hi
    AND NOT EXISTS (SELECT 1 FROM sessionstore.pieces p
      WHERE p.owner = seg_owner AND p.tenant = t AND p.segment = seg
        AND m.seq >= p.from_seq AND m.seq < p.to_seq)
    AND NOT EXISTS (SELECT 1 FROM sessionstore.sessions s
      WHERE s.session_id = seg_owner AND s.tenant = t AND s.head_segment = seg
        AND m.seq >= greatest(s.head_base, s.first_seq) AND m.seq < s.length);
END
$fn$;

-- Removes a session's pieces' references to seqs [lo, hi), releasing what they covered. In seq
-- order, so that transactions lock segments in one order (ancestors' first).
CREATE FUNCTION sessionstore.cut_pieces(t text, id text, lo bigint, hi bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT q.from_seq, q.to_seq, q.owner, q.segment FROM sessionstore.pieces q
      WHERE q.session_id = id AND q.tenant = t AND q.from_seq < hi AND q.to_seq > lo
      ORDER BY q.from_seq LOOP
    DELETE FROM sessionstore.pieces q
      WHERE q.session_id = id AND q.tenant = t AND q.from_seq = p.from_seq;
    IF p.from_seq < lo THEN
      INSERT INTO sessionstore.pieces VALUES (id, t, p.from_seq, lo, p.owner, p.segment);
    END IF;
    IF p.to_seq > hi THEN
      INSERT INTO sessionstore.pieces VALUES (id, t, hi, p.to_seq, p.owner, p.segment);
    END IF;
    PERFORM sessionstore.release(t, p.owner, p.segment, greatest(p.from_seq, lo), least(p.to_seq, hi));
  END LOOP;
END
$fn$;

-- A session's messages [lo, hi), from its pieces and its head (in no order: sort by seq).
CREATE FUNCTION sessionstore.session_messages(t text, id text, lo bigint, hi bigint)
RETURNS TABLE (seq bigint, body text) LANGUAGE sql STABLE AS $fn$
  SELECT m.seq, m.body FROM sessionstore.pieces p JOIN sessionstore.messages m
    ON m.session_id = p.owner AND m.tenant = t AND m.segment = p.segment
      AND m.seq >= greatest(p.from_seq, lo) AND m.seq < least(p.to_seq, hi)
  WHERE p.session_id = id AND p.tenant = t AND p.from_seq < hi AND p.to_seq > lo
  UNION ALL
  SELECT m.seq, m.body FROM sessionstore.sessions s JOIN sessionstore.messages m
    ON m.session_id = s.session_id AND m.tenant = t AND m.segment = s.head_segment
      AND m.seq >= greatest(s.head_base, s.first_seq, lo) AND m.seq < least(s.length, hi)
  WHERE s.session_id = id AND s.tenant = t
$fn$;

-- Creates new_id as a fork of src at at_seq, sharing src's rows; false when new_id is taken.
-- The caller holds src's row lock and checked at_seq.
CREATE FUNCTION sessionstore.fork_session(
  t text, src text, at_seq bigint, new_id text, fork_labels jsonb, now_ms bigint, version text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
  lower bigint;
BEGIN
  SELECT * INTO s FROM sessionstore.sessions WHERE session_id = src AND tenant = t;
  INSERT INTO sessionstore.sessions
    (session_id, tenant, length, durable_length, created_at_ms, updated_at_ms, agent_loop_version,
     labels, labels_revision, parent_session_id, parent_seq, first_seq, head_segment, head_base)
    VALUES (new_id, t, at_seq, at_seq, now_ms, now_ms, version,
      fork_labels, CASE WHEN fork_labels = '{}' THEN 0 ELSE 1 END, src, at_seq, s.first_seq,
      nextval('sessionstore.segments'), at_seq)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO sessionstore.pieces
    SELECT new_id, t, p.from_seq, least(p.to_seq, at_seq), p.owner, p.segment
    FROM sessionstore.pieces p WHERE p.session_id = src AND p.tenant = t AND p.from_seq < at_seq;
  lower := greatest(s.head_base, s.first_seq);
  IF at_seq > lower THEN
    INSERT INTO sessionstore.pieces VALUES (new_id, t, lower, at_seq, src, s.head_segment);
  END IF;
  -- The transaction commits synchronously: the source's earlier commits are durable with it.
  UPDATE sessionstore.sessions SET durable_length = length WHERE session_id = src AND tenant = t;
  PERFORM pg_notify('sessionstore', json_build_object('k', 'a', 't', t, 's', new_id)::text);
  RETURN true;
END
$fn$;

-- Drops a session's messages from rewind_to on. The caller holds its row lock and checked
-- rewind_to. A head that a fork shares past rewind_to is kept for it: the session's part of it
-- becomes a piece and the session gets a new head.
CREATE FUNCTION sessionstore.rewind_session(t text, id text, rewind_to bigint, now_ms bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
  lower bigint;
BEGIN
  SELECT * INTO s FROM sessionstore.sessions WHERE session_id = id AND tenant = t;
  PERFORM sessionstore.cut_pieces(t, id, rewind_to, 9223372036854775807);
  lower := greatest(s.head_base, s.first_seq);
  PERFORM sessionstore.lock_segment(t, id, s.head_segment);
  IF EXISTS (SELECT 1 FROM sessionstore.pieces p
      WHERE p.owner = id AND p.tenant = t AND p.segment = s.head_segment AND p.to_seq > rewind_to) THEN
    IF rewind_to > lower THEN
      INSERT INTO sessionstore.pieces VALUES (id, t, lower, rewind_to, id, s.head_segment);
    END IF;
    UPDATE sessionstore.sessions SET head_segment = nextval('sessionstore.segments'),
        head_base = rewind_to, length = rewind_to, durable_length = rewind_to, updated_at_ms = now_ms
      WHERE session_id = id AND tenant = t;
  ELSE
    UPDATE sessionstore.sessions SET head_base = least(head_base, rewind_to),
        length = rewind_to, durable_length = rewind_to, updated_at_ms = now_ms
      WHERE session_id = id AND tenant = t;
  END IF;
  PERFORM sessionstore.release(t, id, s.head_segment, rewind_to, s.length);
  PERFORM pg_notify('sessionstore', json_build_object('k', 'r', 't', t, 's', id, 'q', rewind_to)::text);
END
$fn$;

-- Drops a session's messages before trim_to (at most its length; the caller holds its row
-- lock); answers how many it dropped.
CREATE FUNCTION sessionstore.trim_session(t text, id text, trim_to bigint)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
BEGIN
  SELECT * INTO s FROM sessionstore.sessions WHERE session_id = id AND tenant = t;
  IF trim_to <= s.first_seq THEN
    RETURN 0;
  END IF;
  PERFORM sessionstore.cut_pieces(t, id, 0, trim_to);
  UPDATE sessionstore.sessions SET first_seq = trim_to WHERE session_id = id AND tenant = t;
  PERFORM sessionstore.release(t, id, s.head_segment, greatest(s.head_base, s.first_seq), trim_to);
  RETURN trim_to - s.first_seq;
END
$fn$;

-- Deletes a session (when it was last updated before updated_before, if given) and the rows no
-- fork of it still references; whether it was deleted.
CREATE FUNCTION sessionstore.delete_session(t text, id text, updated_before bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
BEGIN
  DELETE FROM sessionstore.sessions
    WHERE session_id = id AND tenant = t AND (updated_before IS NULL OR updated_at_ms < updated_before)
    RETURNING * INTO s;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM sessionstore.cut_pieces(t, id, 0, 9223372036854775807);
  PERFORM sessionstore.release(t, id, s.head_segment, greatest(s.head_base, s.first_seq), s.length);
  PERFORM pg_notify('sessionstore', json_build_object('k', 'd', 't', t, 's', id)::text);
  RETURN true;
END
$fn$;

DROP FUNCTION sessionstore.append_batch(
  text[], text[], bigint[], int[], text[], int[], bigint[], bigint, text, boolean);

-- As in version 1, with each request's labels (JSON, or null) and first seq (null: 0) for the
-- session it creates (a session not yet created counts as that long), the rows in the
-- session's head segment with the batch's time, and resends checked across pieces.
CREATE FUNCTION sessionstore.append_batch(
  tenants text[], ids text[], expected bigint[], counts int[], bodies text[], chains int[],
  created bigint[], label_sets text[], starts bigint[], now_ms bigint, version text,
  durable boolean)
RETURNS TABLE (first_seq bigint, next_seq bigint, outcome text, actual bigint, durable_count bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  i int;
  n int;
  base int := 0;
  len bigint;
  head bigint;
  kept bigint;
  exp bigint;
  start bigint;
  overlap int;
  stored text[];
  failed int[] := '{}';
  added int;
BEGIN
  PERFORM set_config('synchronous_commit', CASE WHEN durable THEN 'on' ELSE 'off' END, true);
  FOR i IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
    n := counts[i];
    exp := expected[i];
    start := coalesce(starts[i], 0);
    first_seq := 0; next_seq := 0; actual := 0; outcome := 'ok'; added := 0; durable_count := 0;
    IF chains[i] IS NOT NULL AND chains[i] = ANY(failed) THEN
      outcome := 'chain';
    ELSE
      SELECT s.length, s.head_segment, s.first_seq INTO len, head, kept FROM sessionstore.sessions s
        WHERE s.session_id = ids[i] AND s.tenant = tenants[i] FOR UPDATE;
      IF NOT FOUND AND n > 0 AND coalesce(exp, start) = start THEN
        INSERT INTO sessionstore.sessions AS s
          (session_id, tenant, length, durable_length, created_at_ms, updated_at_ms,
           agent_loop_version, labels, labels_revision, first_seq, head_segment, head_base)
          VALUES (ids[i], tenants[i], start, start, coalesce(created[i], now_ms), now_ms, version,
            coalesce(label_sets[i]::jsonb, '{}'),
            CASE WHEN coalesce(label_sets[i]::jsonb, '{}') = '{}' THEN 0 ELSE 1 END,
            start, nextval('sessionstore.segments'), start)
          ON CONFLICT DO NOTHING;
        SELECT s.length, s.head_segment, s.first_seq INTO len, head, kept FROM sessionstore.sessions s
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i] FOR UPDATE;
      END IF;
      len := coalesce(len, start);
      IF exp IS NULL OR exp = len THEN
        first_seq := len; next_seq := len + n; added := n;
      ELSIF exp > len OR n = 0 OR exp < kept THEN
        outcome := 'aborted'; actual := len;
      ELSE
        overlap := least(n, len - exp);
        SELECT array_agg(m.body ORDER BY m.seq) INTO stored
          FROM sessionstore.session_messages(tenants[i], ids[i], exp, exp + overlap) m;
        IF stored IS NOT DISTINCT FROM bodies[base + 1 : base + overlap] THEN
          first_seq := exp; next_seq := exp + n; added := n - overlap;
          base := base + overlap;
          n := n - overlap;
        ELSE
          outcome := 'aborted'; actual := len;
        END IF;
      END IF;
      IF added > 0 THEN
        INSERT INTO sessionstore.messages (session_id, tenant, segment, seq, body, appended_at_ms)
          SELECT ids[i], tenants[i], head, len + k - 1, bodies[base + k], now_ms
          FROM generate_series(1, added) AS k;
        UPDATE sessionstore.sessions s SET length = len + added, updated_at_ms = now_ms,
            durable_length = CASE WHEN durable THEN len + added ELSE s.durable_length END
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i];
        PERFORM pg_notify('sessionstore', json_build_object('k', 'a', 't', tenants[i], 's', ids[i])::text);
      ELSIF durable AND outcome = 'ok' THEN
        UPDATE sessionstore.sessions s SET durable_length = s.length
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i] AND s.durable_length < s.length;
      END IF;
      IF outcome = 'ok' THEN
        SELECT s.durable_length INTO durable_count FROM sessionstore.sessions s
          WHERE s.session_id = ids[i] AND s.tenant = tenants[i];
        durable_count := coalesce(durable_count, 0);
      END IF;
      IF outcome <> 'ok' AND chains[i] IS NOT NULL THEN
        failed := failed || chains[i];
      END IF;
    END IF;
    base := base + n;
    RETURN NEXT;
  END LOOP;
END
$fn$;
`,
};
