package memory

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"kintogo/internal/storage"
)

// maxLogBatches bounds the change log a memory store keeps: a reader
// further behind starts over (storage.ErrLogTruncated).
const maxLogBatches = 10000

// changeLog is a memory store's change log: one batch per commit, at
// consecutive positions (writers are serialized, so this is commit order).
type changeLog struct {
	mu      sync.Mutex
	writer  string
	batches []storage.Batch // the newest maxLogBatches
	head    int64
	wake    chan struct{}
}

func (l *changeLog) init() {
	l.writer = uuid.NewString()
	l.wake = make(chan struct{}, 1)
}

// append logs a commit's changes (none: nothing logged).
func (l *changeLog) append(changes []storage.Change) {
	if len(changes) == 0 {
		return
	}
	l.mu.Lock()
	l.head++
	l.batches = append(l.batches, storage.Batch{Position: l.head, Commits: []storage.Commit{{
		Writer: l.writer, At: time.Now(), Changes: changes,
	}}})
	if len(l.batches) > maxLogBatches {
		l.batches = append(l.batches[:0:0], l.batches[len(l.batches)-maxLogBatches/2:]...)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Writer implements storage.Log.
func (s *Store) Writer() string { return s.log.writer }

// LogHead implements storage.Log.
func (s *Store) LogHead(context.Context) (int64, error) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return s.log.head, nil
}

// ReadLog implements storage.Log.
func (s *Store) ReadLog(_ context.Context, after int64, max int) ([]storage.Batch, error) {
	l := &s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if after >= l.head {
		return nil, nil
	}
	first := l.head - int64(len(l.batches)) + 1
	if after+1 < first {
		return nil, storage.ErrLogTruncated
	}
	out := l.batches[after+1-first:]
	if len(out) > max {
		out = out[:max]
	}
	return append([]storage.Batch(nil), out...), nil
}

// LogWake implements storage.Log: a memory store's commits are all its own.
func (s *Store) LogWake() <-chan struct{} { return s.log.wake }

// PruneLog implements storage.Log.
func (s *Store) PruneLog(_ context.Context, before time.Time) (int64, error) {
	l := &s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.batches)-1 && l.batches[n].Commits[0].At.Before(before) {
		n++
	}
	l.batches = append(l.batches[:0:0], l.batches[n:]...)
	return int64(n), nil
}
