package sqlstore

import (
	"context"
	"database/sql"
)

// stdQuerier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type stdQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// std adapts a database/sql handle to Querier.
type std struct{ q stdQuerier }

func (s std) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.q.ExecContext(ctx, query, args...)
	return err
}

func (s std) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{rows}, nil
}

func (s std) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.q.QueryRowContext(ctx, query, args...)
}

// stdRows gives *sql.Rows the Close of Rows; its error is Err's.
type stdRows struct{ *sql.Rows }

func (r stdRows) Close() { r.Rows.Close() }

// stdTxn adapts *sql.Tx to Txn.
type stdTxn struct {
	std
	tx *sql.Tx
}

// StdTxn adapts a database/sql transaction to Txn.
func StdTxn(tx *sql.Tx) Txn { return stdTxn{std{tx}, tx} }

func (t stdTxn) Commit(context.Context) error   { return t.tx.Commit() }
func (t stdTxn) Rollback(context.Context) error { return t.tx.Rollback() }

// stdDB adapts *sql.DB to DB.
type stdDB struct {
	std
	db *sql.DB
}

// StdDB adapts a database/sql pool to DB; its transactions are begun with
// the driver's default options.
func StdDB(db *sql.DB) DB { return stdDB{std{db}, db} }

func (d stdDB) Begin(ctx context.Context) (Txn, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return StdTxn(tx), nil
}
