package events

import (
	"sync"
	"time"
)

// Batch is what a Feed delivers: the events of one or more commits.
type Batch struct {
	Events []Event
	// Local: committed by this node (delivered before the writer got its
	// answer); otherwise read from the change log.
	Local bool
	// Committed is when the (last) commit happened, by its writer's
	// clock; zero when unknown.
	Committed time.Time
}

// Reset is the batch after which every view starts over.
var Reset = Batch{Events: []Event{{Everything: true}}}

// maxQueued bounds the batches waiting for an asynchronous subscriber:
// beyond it they collapse into one Reset.
const maxQueued = 4096

// Feed delivers committed changes, this node's and the other nodes', to
// its subscribers, each once: the one door through which everything that
// depends on the stored data learns that it changed. Subscribe while the
// server is assembled, before anything is delivered.
type Feed struct {
	inline []func(Batch)
	async  []*asyncSub
}

// Subscribe calls fn with every batch, on the delivering goroutine (a
// local commit's writer, before it gets its answer): fn must be quick and
// safe for concurrent use.
func (f *Feed) Subscribe(fn func(Batch)) { f.inline = append(f.inline, fn) }

// SubscribeAsync calls fn with every batch, in delivery order, one call
// at a time, on a goroutine of its own: for work that may wait (I/O,
// storage reads). A subscriber that falls maxQueued batches behind gets
// one Reset instead.
func (f *Feed) SubscribeAsync(fn func(Batch)) { f.async = append(f.async, &asyncSub{fn: fn}) }

// Deliver hands b to every subscriber.
func (f *Feed) Deliver(b Batch) {
	for _, fn := range f.inline {
		fn(b)
	}
	for _, a := range f.async {
		a.push(b)
	}
}

// Idle waits until the asynchronous subscribers have handled everything
// delivered so far (tests, commands that end).
func (f *Feed) Idle() {
	for _, a := range f.async {
		a.idle()
	}
}

// asyncSub is an asynchronous subscriber: its queue, drained by a
// goroutine that runs while the queue is not empty.
type asyncSub struct {
	fn      func(Batch)
	mu      sync.Mutex
	queue   []Batch
	running bool
	done    *sync.Cond
}

func (a *asyncSub) push(b Batch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) >= maxQueued {
		a.queue = append(a.queue[:0], Reset)
	} else {
		a.queue = append(a.queue, b)
	}
	if !a.running {
		a.running = true
		go a.drain()
	}
}

func (a *asyncSub) drain() {
	for {
		a.mu.Lock()
		if len(a.queue) == 0 {
			a.running = false
			if a.done != nil {
				a.done.Broadcast()
			}
			a.mu.Unlock()
			return
		}
		b := a.queue[0]
		a.queue = a.queue[1:]
		a.mu.Unlock()
		a.fn(b)
	}
}

func (a *asyncSub) idle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done = sync.NewCond(&a.mu)
	}
	for a.running {
		a.done.Wait()
	}
}
