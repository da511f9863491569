package postgres

import (
	"context"
	"strings"
	"time"
)

// channel is the PostgreSQL notification channel of committed changes.
const channel = "kintogo_changes"

// Notify tells every node listening on the database that this node
// committed changes. payload is free text, at most a few kilobytes
// (PostgreSQL's limit is 8000 bytes); node identifies the sender.
func (s *Store) Notify(ctx context.Context, node, payload string) error {
	if len(payload) > 7000 {
		payload = ""
	}
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, node+"\n"+payload)
	return err
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
