package postgres

import (
	"context"
	"strings"
	"time"
)

// channel is the PostgreSQL notification channel of committed changes.
const channel = "kintogo_changes"

// maxPayload bounds a notification's payload (PostgreSQL's limit is 8000
// bytes).
const maxPayload = 7000

// MaxPayload is the largest payload Message sends.
const MaxPayload = maxPayload

// Message is the text a node announces (storage.Tx.Announce) to the nodes
// that Listen: the sender's node id, then the payload, or nothing when the
// payload is too large to be sent (the listeners then assume that
// anything may have changed).
func Message(node, payload string) string {
	if len(payload) > maxPayload {
		payload = ""
	}
	return node + "\n" + payload
}

// Listen calls onRemote with the payload of every notification sent by
// another node, until ctx ends or the store is closed. After a lost connection it reconnects and
// calls onRemote with an empty payload, since notifications may have been
// missed meanwhile: the receiver must then assume that anything changed.
func (s *Store) Listen(ctx context.Context, node string, onRemote func(payload string)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.stop, cancel)
	defer stop()
	first := true
	for ctx.Err() == nil {
		// A failed connection is retried below; the next successful one
		// tells onRemote that notifications may have been missed.
		s.listenOnce(ctx, node, onRemote, !first)
		first = false
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, node string, onRemote func(string), reconnected bool) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if reconnected {
		onRemote("")
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			// The connection is in an unknown state: drop it from the pool.
			conn.Conn().Close(context.Background())
			return err
		}
		sender, payload, _ := strings.Cut(n.Payload, "\n")
		if sender != node {
			onRemote(payload)
		}
	}
}
