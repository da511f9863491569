package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stdQuerier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type stdQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// std adapts a database/sql handle to Querier. In a transaction with
// prepared statements, a statement the pool has prepared runs as such.
type std struct {
	q     stdQuerier
	tx    *sql.Tx
	stmts *Statements
}

// on returns what runs query: the transaction's use of the pool's
// prepared statement when there is one.
func (s std) on(ctx context.Context, query string) stdQuerier {
	if st := s.stmts.get(query); st != nil {
		return preparedQuerier{s.tx.StmtContext(ctx, st)}
	}
	return s.q
}

func (s std) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.on(ctx, query).ExecContext(ctx, query, args...)
	return err
}

func (s std) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.on(ctx, query).QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{rows}, nil
}

func (s std) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.on(ctx, query).QueryRowContext(ctx, query, args...)
}

// preparedQuerier runs a prepared statement as stdQuerier, ignoring the
// query text (the statement's own).
type preparedQuerier struct{ st *sql.Stmt }

func (p preparedQuerier) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return p.st.ExecContext(ctx, args...)
}

func (p preparedQuerier) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return p.st.QueryContext(ctx, args...)
}

func (p preparedQuerier) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return p.st.QueryRowContext(ctx, args...)
}

// Statements keeps a pool's statements prepared, so that a transaction
// does not parse and plan each statement again (database/sql prepares a
// statement for every call otherwise: most of a small write's cost on
// SQLite). A statement is prepared in the background the first time it
// is seen, outside the transaction that saw it: preparing on the pool
// inside a transaction could wait for the very connection the
// transaction holds. Until then it runs unprepared. At most
// maxStatements texts are kept, for the store's lifetime (closing one a
// transaction may be using is not safe); beyond, statements run
// unprepared.
type Statements struct {
	db       *sql.DB
	mu       sync.Mutex
	prepared map[string]*sql.Stmt // nil while being prepared, or if it failed
	closed   bool
	inFlight sync.WaitGroup // preparations under way
}

const maxStatements = 512

// NewStatements returns the prepared statements of db.
func NewStatements(db *sql.DB) *Statements {
	return &Statements{db: db, prepared: map[string]*sql.Stmt{}}
}

// get returns query's prepared statement, nil if there is none yet.
func (s *Statements) get(query string) *sql.Stmt {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, seen := s.prepared[query]
	if !seen && !s.closed && len(s.prepared) < maxStatements {
		s.prepared[query] = nil
		s.inFlight.Add(1)
		go s.prepare(query)
	}
	return st
}

func (s *Statements) prepare(query string) {
	defer s.inFlight.Done()
	st, err := s.db.PrepareContext(context.Background(), query)
	if err != nil {
		return // it runs unprepared, and fails there if it must
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		st.Close()
		return
	}
	s.prepared[query] = st
}

// Close closes the prepared statements, once those under way are done;
// call it before closing the pool.
func (s *Statements) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.inFlight.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.prepared {
		if st != nil {
			st.Close()
		}
	}
}

// Txn adapts a transaction of the statements' pool to Txn, running the
// prepared statements in it.
func (s *Statements) Txn(tx *sql.Tx) Txn { return stdTxn{std{tx, tx, s}, tx} }

// stdRows gives *sql.Rows the Close of Rows; its error is Err's.
type stdRows struct{ *sql.Rows }

func (r stdRows) Close() { r.Rows.Close() }

// stdTxn adapts *sql.Tx to Txn.
type stdTxn struct {
	std
	tx *sql.Tx
}

// StdTxn adapts a database/sql transaction to Txn.
func StdTxn(tx *sql.Tx) Txn { return stdTxn{std{q: tx, tx: tx}, tx} }

func (t stdTxn) Commit(context.Context) error   { return t.tx.Commit() }
func (t stdTxn) Rollback(context.Context) error { return t.tx.Rollback() }

// stdDB adapts *sql.DB to DB.
type stdDB struct {
	std
	db *sql.DB
}

// StdDB adapts a database/sql pool to DB; its transactions are begun with
// the driver's default options.
func StdDB(db *sql.DB) DB { return stdDB{std{q: db}, db} }

func (d stdDB) Begin(ctx context.Context) (Txn, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return StdTxn(tx), nil
}
