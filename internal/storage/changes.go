package storage

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Change is one change a transaction made, as the transaction itself
// recorded it: the write of an object or of its tombstone, a scope given
// its first timestamp (ID empty), or, with Everything, changes too broad
// to list (a flush, purged tombstones), after which anything derived from
// the data must be dropped. What happens after a commit is derived from
// these records only (see Tx.Changes and Log), so that no write can go
// unannounced.
type Change struct {
	Scope      Scope  `json:"s,omitempty"`
	ID         string `json:"i,omitempty"`
	Timestamp  int64  `json:"t,omitempty"`
	Deleted    bool   `json:"d,omitempty"`
	Everything bool   `json:"e,omitempty"`
}

// MarshalJSON is Scope's compact form in the log: [parent, resource].
func (s Scope) MarshalJSON() ([]byte, error) {
	return marshalPair(s.Parent, s.Resource)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (s *Scope) UnmarshalJSON(b []byte) error {
	return unmarshalPair(b, &s.Parent, &s.Resource)
}

// Commit is one committed transaction as the change log keeps it.
type Commit struct {
	// Writer names the store that committed it (Log.Writer): a node
	// recognises its own commits, which it delivered when it made them.
	Writer string
	// At is the writer's clock just before the commit.
	At      time.Time
	Changes []Change
}

// Batch is the commits that became visible together at one position of
// the log, in an order every reader of the log sees alike.
type Batch struct {
	Position int64
	Commits  []Commit
}

// ErrLogTruncated is returned by Log.ReadLog for a position older than what
// the log keeps: the reader missed changes, and must start over from the
// head.
var ErrLogTruncated = errors.New("the change log no longer holds that position")

// Log is the change log of a backend: every transaction that changed
// something appends its changes (Tx.Changes) to it as it commits, and
// every node follows it by position, so that each sees every commit,
// its own and the other nodes', exactly once and in an order they all
// share. Positions increase in commit order.
type Log interface {
	// Writer is the name of this store's commits in the log.
	Writer() string
	// LogHead returns the newest position (0 when the log is empty).
	LogHead(ctx context.Context) (int64, error)
	// ReadLog returns the batches after position after, oldest first, at
	// most max of them; ErrLogTruncated when the log no longer holds
	// what follows after.
	ReadLog(ctx context.Context, after int64, max int) ([]Batch, error)
	// LogWake returns a channel that receives when new batches may be
	// readable (this store committed, another node announced a commit,
	// a standby replayed some). Followers read every so often anyway.
	LogWake() <-chan struct{}
	// PruneLog removes what the log holds of commits older than before,
	// except the newest position, and returns how many commits it removed.
	PruneLog(ctx context.Context, before time.Time) (int64, error)
}

// Ticking is implemented by logs where a commit becomes readable by
// position only once a tick covers it (PostgreSQL's, whose writing nodes
// tick a few milliseconds after their commits).
type Ticking interface {
	// Publish ticks now, so that every commit this store saw committed is
	// readable in the log when it returns (nothing on a standby).
	Publish(ctx context.Context) error
}

// Lagging is implemented by backends that may read a replica of the
// database (PostgreSQL's streaming standbys).
type Lagging interface {
	// Standby reports whether the store reads a replica.
	Standby() bool
	// Lag tells how far behind its primary the replica is: 0 on a
	// primary, or when the replica replayed everything it received.
	Lag(ctx context.Context) (time.Duration, error)
}

// LaggingOf returns s as a Lagging, nil when it is none.
func LaggingOf(s Storage) Lagging { return unwrapAs[Lagging](s) }

func marshalPair(a, b string) ([]byte, error) { return json.Marshal([2]string{a, b}) }

func unmarshalPair(raw []byte, a, b *string) error {
	var pair [2]string
	if err := json.Unmarshal(raw, &pair); err != nil {
		return err
	}
	*a, *b = pair[0], pair[1]
	return nil
}

// EncodeChanges is the form of a commit's changes in the log.
func EncodeChanges(changes []Change) string {
	b, _ := json.Marshal(changes) // strings and integers only: never fails
	return string(b)
}

// DecodeChanges reads what EncodeChanges wrote.
func DecodeChanges(s string) ([]Change, error) {
	var changes []Change
	err := json.Unmarshal([]byte(s), &changes)
	return changes, err
}

// Unwrapper is implemented by a Storage that wraps another (the tests'
// retried stores): what the wrapped one implements besides Storage (Log,
// Lagging) is found through it.
type Unwrapper interface {
	Unwrap() Storage
}

// LogOf returns s's change log, nil when it has none.
func LogOf(s Storage) Log { return unwrapAs[Log](s) }

// unwrapAs returns s, or the first store it wraps, as a T (nil when none
// is one).
func unwrapAs[T any](s Storage) T {
	for {
		if t, ok := s.(T); ok {
			return t
		}
		u, ok := s.(Unwrapper)
		if !ok {
			var zero T
			return zero
		}
		s = u.Unwrap()
	}
}
