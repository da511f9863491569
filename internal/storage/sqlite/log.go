package sqlite

import (
	"context"
	"database/sql"
	"time"

	"kintogo/internal/storage"
)

// The change log on SQLite is the changelog table: every transaction that
// changed something appends one row as it commits (sqlstore.Dialect.Run),
// and SQLite's single writer makes row ids positions in commit order. A
// command writing beside the server (create-user) appends its rows too,
// and the server reads them when the command tells it (TellHolder).

// Writer implements storage.Log.
func (s *Store) Writer() string { return s.logWriter.Name }

// wakeFollowers tells the log's followers that a commit may be readable.
func (s *Store) wakeFollowers() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// LogWake implements storage.Log. It receives after every commit of this
// store, and when WakeFollowers is called (a SIGHUP from a command).
func (s *Store) LogWake() <-chan struct{} { return s.wake }

// WakeFollowers tells the followers of the log that another process
// committed.
func (s *Store) WakeFollowers() { s.wakeFollowers() }

// LogHead implements storage.Log.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `SELECT max(id) FROM changelog`).Scan(&head)
	return head.Int64, dialect.Wrap(err)
}

// ReadLog implements storage.Log: one batch per row.
func (s *Store) ReadLog(ctx context.Context, after int64, max int) ([]storage.Batch, error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, dialect.Wrap(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, writer, at, changes FROM changelog WHERE id > ? ORDER BY id LIMIT ?`, after, max)
	if err != nil {
		return nil, dialect.Wrap(err)
	}
	defer rows.Close()
	var out []storage.Batch
	for rows.Next() {
		var id, at int64
		var writer, raw string
		if err := rows.Scan(&id, &writer, &at, &raw); err != nil {
			return nil, dialect.Wrap(err)
		}
		changes, err := storage.DecodeChanges(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, storage.Batch{Position: id, Commits: []storage.Commit{{Writer: writer, At: time.UnixMicro(at), Changes: changes}}})
	}
	if err := rows.Err(); err != nil {
		return nil, dialect.Wrap(err)
	}
	// Ids are consecutive but for pruned rows: a first row beyond the
	// next position means that what followed after was pruned.
	if len(out) > 0 && out[0].Position != after+1 {
		return nil, storage.ErrLogTruncated
	}
	if after > 0 && len(out) == 0 {
		var head sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(id) FROM changelog`).Scan(&head); err != nil {
			return nil, dialect.Wrap(err)
		}
		if head.Int64 < after {
			return nil, storage.ErrLogTruncated // another database file
		}
	}
	return out, nil
}

// PruneLog implements storage.Log: rows older than before go, except the
// newest (which keeps the head's position).
func (s *Store) PruneLog(ctx context.Context, before time.Time) (int64, error) {
	// The writer pool's one connection serializes it with the writes.
	res, err := s.writer.ExecContext(ctx, `DELETE FROM changelog WHERE at < ? AND id < (SELECT max(id) FROM changelog)`, before.UnixMicro())
	if err != nil {
		return 0, dialect.Wrap(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
