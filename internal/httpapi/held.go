package httpapi

import (
	"sync/atomic"
	"syscall"

	"kintogo/internal/kerr"
)

// Held requests: a long-poll waiting, an event stream, an upload being
// received each hold a connection (a file descriptor) and some memory for
// as long as their client wants. They count against one budget per node
// (max_held_requests), kept below half the process's file-descriptor
// limit (which Go raises to its hard limit at start), so that a flood of
// them is refused with a 503 and Retry-After while the node goes on
// answering everything else, heartbeats included.

// heldBudget is the effective budget of held requests.
func heldBudget(setting int64) int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 && lim.Cur < 1<<40 {
		setting = min(setting, int64(lim.Cur)/2)
	}
	return max(setting, 1)
}

// errTooManyHeld refuses a request beyond the budget.
var errTooManyHeld = &kerr.Error{Kind: kerr.Unavailable, Message: "Too many requests held open on this server, please retry later."}

// errDraining refuses a request that would be held while the server shuts
// down: its client goes elsewhere.
var errDraining = &kerr.Error{Kind: kerr.Unavailable, Message: "The server is shutting down, please retry."}

// Drain ends the requests held open, at once, for a shutdown: long-polls
// answer what they would at their deadline, event streams end with a last
// comment (EventSource clients reconnect, to another node behind a load
// balancer), and no new one is held. Other requests go on.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// Draining is closed once the server drains.
func (s *Server) Draining() <-chan struct{} { return s.draining }

// Hold counts a request held open against the node's budget: it returns
// the function that ends it, or an error (503) beyond the budget or
// while the server drains.
func (s *Server) Hold() (release func(), err error) {
	select {
	case <-s.draining:
		return nil, errDraining
	default:
	}
	if s.held.Add(1) > s.heldMax {
		s.held.Add(-1)
		return nil, errTooManyHeld
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			s.held.Add(-1)
		}
	}, nil
}

// HeldStats reports the requests held open and the budget.
func (s *Server) HeldStats() (held, budget int64) { return s.held.Load(), s.heldMax }
