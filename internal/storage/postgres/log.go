package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"kintogo/internal/storage"
)

// The change log on PostgreSQL.
//
// Every transaction that changed something appends one row to changelog
// as its last statement (sqlstore.Dialect.Run), with its transaction id
// (pg_current_xact_id). Transaction ids are assigned before commit, so
// they do not commit in order: a reader asking "everything after the
// last id I saw" would skip a transaction that commits late. Following
// is made exact the way PgQ does it, with ticks: a tick is a row of
// changelog_ticks holding a snapshot of the primary (pg_current_snapshot),
// taken under a lock so that each tick's snapshot sees everything the
// previous one saw. The commits of tick N are the log rows visible in N's
// snapshot and not in N-1's: every commit belongs to exactly one tick, and
// every reader, on the primary or on a streaming standby replaying it,
// sees the same batches in the same order. Tick ids are positions.
//
// Ticks are written by the nodes that write (the Ticker): right after
// their own commits (at most one tick every tickInterval), and every
// second in case another process committed and exited before ticking.
// NOTIFY on the tick's commit wakes the nodes on the primary; nodes on a
// standby, which receives no notifications, poll the replay position
// (pg_last_wal_replay_lsn), a cheap query, every pollInterval.

// channel is the notification channel of new ticks.
const channel = "kintogo_changes"

// tickLock is the advisory lock key that serializes tickers.
const tickLock = 727275

// tickInterval is the least time between two ticks of one node, and
// pollInterval the period at which a node on a standby looks for replayed
// commits: together, most of the delay of another node's commit.
const (
	tickInterval = 5 * time.Millisecond
	pollInterval = 50 * time.Millisecond
)

// Writer implements storage.Log.
func (s *Store) Writer() string { return s.logWriter.Name }

// LogWake implements storage.Log.
func (s *Store) LogWake() <-chan struct{} { return s.wake }

func (s *Store) wakeFollowers() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// tickSoon asks the ticker for a tick: this store committed changes.
func (s *Store) tickSoon() {
	s.pendingTick.Store(true)
	select {
	case s.tickc <- struct{}{}:
	default:
	}
}

// LogHead implements storage.Log.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(max(id), 0) FROM changelog_ticks`).Scan(&head)
	return head, dialect.Wrap(err)
}

// tickSQL inserts the next tick if some commit is visible now that the
// last tick did not see, and notifies the nodes on the primary. The
// snapshot is the statement's, taken after the lock was granted, so after
// the previous tick committed.
const tickSQL = `WITH last AS (SELECT id, snapshot FROM changelog_ticks ORDER BY id DESC LIMIT 1),
base AS (SELECT COALESCE((SELECT snapshot FROM last), '1:1:'::pg_snapshot) AS s),
ins AS (
	INSERT INTO changelog_ticks (id, snapshot, at)
	SELECT COALESCE((SELECT id FROM last), 0) + 1, pg_current_snapshot(), $1
	WHERE EXISTS (SELECT 1 FROM changelog c, base
		WHERE c.txid >= pg_snapshot_xmin(base.s) AND NOT pg_visible_in_snapshot(c.txid, base.s))
	RETURNING id)
SELECT id, pg_notify('` + channel + `', id::text) IS NULL FROM ins`

// Tick makes the commits visible now readable in the log (a new tick),
// if there are any the last tick did not cover.
func (s *Store) Tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	return s.tickLocked(ctx)
}

func (s *Store) tickLocked(ctx context.Context) error {
	s.pendingTick.Store(false)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, tickLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, tickSQL, time.Now().UnixMicro())
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		s.pendingTick.Store(true)
	}
	return dialect.Wrap(err)
}

// Publish implements storage.Ticking: a tick only when this store
// committed something no tick covers yet (once the tick in flight, if
// any, is done), so that callers cost nothing most of the time.
func (s *Store) Publish(ctx context.Context) error {
	if s.standby {
		return nil
	}
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	if !s.pendingTick.Load() {
		return nil
	}
	return s.tickLocked(ctx)
}

// ticker ticks after this store's commits and every second, until the
// store closes.
func (s *Store) ticker(log *slog.Logger) {
	defer close(s.tickerDone)
	every := time.NewTicker(time.Second)
	defer every.Stop()
	failing := false
	for {
		select {
		case <-s.stop.Done():
			return
		case <-s.tickc:
		case <-every.C:
		}
		err := s.Tick(s.stop)
		if err != nil && s.stop.Err() == nil && !failing {
			log.Warn("change log: cannot tick; other nodes see this node's writes once it can", "err", err)
		}
		failing = err != nil
		select {
		case <-s.stop.Done():
			return
		case <-time.After(tickInterval):
		}
	}
}

// snapshot is a pg_snapshot: xmin:xmax:xip,... A transaction id is
// visible in it when it committed before the snapshot was taken.
type snapshot struct {
	xmin, xmax uint64
	xip        []uint64
}

func parseSnapshot(text string) (snapshot, error) {
	parts := strings.SplitN(text, ":", 3)
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("pg_snapshot %q", text)
	}
	var sn snapshot
	var err error
	if sn.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return sn, err
	}
	if sn.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return sn, err
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return sn, err
			}
			sn.xip = append(sn.xip, v)
		}
	}
	return sn, nil
}

// visible is pg_visible_in_snapshot.
func (sn snapshot) visible(txid uint64) bool {
	return txid < sn.xmin || (txid < sn.xmax && !slices.Contains(sn.xip, txid))
}

// ReadLog implements storage.Log: the batches of the ticks after after.
func (s *Store) ReadLog(ctx context.Context, after int64, max int) ([]storage.Batch, error) {
	var out []storage.Batch
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, snapshot::text, at FROM changelog_ticks WHERE id >= $1 ORDER BY id LIMIT $2`, after, max+1)
		if err != nil {
			return err
		}
		type tick struct {
			id   int64
			snap snapshot
			raw  string
		}
		var ticks []tick
		for rows.Next() {
			var t tick
			var at int64
			if err := rows.Scan(&t.id, &t.raw, &at); err != nil {
				rows.Close()
				return err
			}
			if t.snap, err = parseSnapshot(t.raw); err != nil {
				rows.Close()
				return err
			}
			ticks = append(ticks, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var base *tick
		switch {
		case after == 0:
			if len(ticks) > 0 && ticks[0].id != 1 {
				return storage.ErrLogTruncated
			}
		case len(ticks) == 0 || ticks[0].id != after:
			// The tick after stood for was pruned (or the database is
			// another one).
			return storage.ErrLogTruncated
		default:
			base, ticks = &ticks[0], ticks[1:]
		}
		if len(ticks) == 0 {
			return nil
		}
		last := ticks[len(ticks)-1]
		q := `SELECT txid::text, writer, at, changes FROM changelog WHERE pg_visible_in_snapshot(txid, $1::pg_snapshot)`
		args := []any{last.raw}
		if base != nil {
			q += ` AND txid >= pg_snapshot_xmin($2::pg_snapshot) AND txid < pg_snapshot_xmax($1::pg_snapshot)
				AND NOT pg_visible_in_snapshot(txid, $2::pg_snapshot)`
			args = append(args, base.raw)
		}
		rows, err = tx.Query(ctx, q+` ORDER BY txid`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = make([]storage.Batch, len(ticks))
		for i, t := range ticks {
			out[i].Position = t.id
		}
		for rows.Next() {
			var txid, writer, raw string
			var at int64
			if err := rows.Scan(&txid, &writer, &at, &raw); err != nil {
				return err
			}
			x, err := strconv.ParseUint(txid, 10, 64)
			if err != nil {
				return err
			}
			changes, err := storage.DecodeChanges(raw)
			if err != nil {
				return err
			}
			// The commit belongs to the first tick that saw it.
			i := slices.IndexFunc(ticks, func(t tick) bool { return t.snap.visible(x) })
			if i < 0 {
				continue // cannot be: the last tick sees it
			}
			out[i].Commits = append(out[i].Commits, storage.Commit{Writer: writer, At: time.UnixMicro(at), Changes: changes})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			out[i].Commits = commitOrder(out[i].Commits)
		}
		return nil
	})
	if errors.Is(err, storage.ErrLogTruncated) {
		return nil, err
	}
	if err != nil {
		return nil, dialect.Wrap(err)
	}
	return out, nil
}

// commitOrder orders the commits of one tick (given in transaction id
// order, which is not commit order) as they committed where it matters:
// in each scope, by their timestamps there (writers of a scope hold its
// lock until they commit, so its timestamps follow commit order, and no
// two commits can be in both orders in two scopes). Commits that share no
// scope keep their transaction id order.
func commitOrder(commits []storage.Commit) []storage.Commit {
	if len(commits) < 2 {
		return commits
	}
	type touch struct {
		commit int
		ts     int64
	}
	byScope := map[storage.Scope][]touch{}
	for i, c := range commits {
		newest := map[storage.Scope]int64{}
		for _, ch := range c.Changes {
			if !ch.Everything {
				newest[ch.Scope] = max(newest[ch.Scope], ch.Timestamp)
			}
		}
		for sc, ts := range newest {
			byScope[sc] = append(byScope[sc], touch{i, ts})
		}
	}
	after := make([][]int, len(commits)) // commit -> those that follow it
	waits := make([]int, len(commits))   // commit -> how many precede it
	for _, touches := range byScope {
		slices.SortFunc(touches, func(a, b touch) int { return cmp.Compare(a.ts, b.ts) })
		for k := 1; k < len(touches); k++ {
			before, next := touches[k-1].commit, touches[k].commit
			after[before] = append(after[before], next)
			waits[next]++
		}
	}
	// Kahn's algorithm, the smallest transaction id first among the ready.
	out := make([]storage.Commit, 0, len(commits))
	done := make([]bool, len(commits))
	for len(out) < len(commits) {
		next := -1
		for i := range commits {
			if !done[i] && waits[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			// A cycle cannot be (two-phase locking); should timestamps
			// say otherwise, the rest keeps its transaction id order.
			for i := range commits {
				if !done[i] {
					out = append(out, commits[i])
				}
			}
			return out
		}
		done[next] = true
		out = append(out, commits[next])
		for _, j := range after[next] {
			waits[j]--
		}
	}
	return out
}

// PruneLog implements storage.Log: ticks older than before go (the newest
// stays), then the commits every remaining tick saw.
func (s *Store) PruneLog(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM changelog_ticks WHERE at < $1 AND id < (SELECT max(id) FROM changelog_ticks)`, before.UnixMicro()); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM changelog WHERE txid < (SELECT pg_snapshot_xmin(snapshot) FROM changelog_ticks ORDER BY id LIMIT 1)`)
		n = tag.RowsAffected()
		return err
	})
	return n, dialect.Wrap(err)
}

// listen wakes the followers at every tick notification, until the store
// closes; after a lost connection it reconnects and wakes them (they
// read the log, so nothing notified meanwhile is lost).
func (s *Store) listen() {
	defer close(s.listenerDone)
	for s.stop.Err() == nil {
		s.listenOnce()
		s.wakeFollowers()
		select {
		case <-s.stop.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce() error {
	conn, err := s.pool.Acquire(s.stop)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(s.stop, "LISTEN "+channel); err != nil {
		return err
	}
	s.wakeFollowers()
	for {
		if _, err := conn.Conn().WaitForNotification(s.stop); err != nil {
			// The connection is in an unknown state: drop it from the pool.
			conn.Conn().Close(context.Background())
			return err
		}
		s.wakeFollowers()
	}
}

// pollReplay wakes the followers of a standby when it replayed more of
// its primary's log, until the store closes.
func (s *Store) pollReplay() {
	defer close(s.listenerDone)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-s.stop.Done():
			return
		case <-t.C:
		}
		var lsn *string
		if err := s.pool.QueryRow(s.stop, `SELECT pg_last_wal_replay_lsn()::text`).Scan(&lsn); err != nil {
			continue
		}
		if lsn != nil && *lsn != last {
			last = *lsn
			s.wakeFollowers()
		}
	}
}

// Lag implements storage.Lagging: how long the commits received but not
// replayed yet have waited, on a standby (0 on a primary).
func (s *Store) Lag(ctx context.Context) (time.Duration, error) {
	if !s.standby {
		return 0, nil
	}
	var secs float64
	err := s.pool.QueryRow(ctx, `SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
		ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) END`).Scan(&secs)
	return time.Duration(secs * float64(time.Second)), dialect.Wrap(err)
}

// Standby reports whether the store reads a hot standby (a read-only
// replica).
func (s *Store) Standby() bool { return s.standby }
