package vrrp

import (
	"context"
	"log/slog"
	"time"
)

// logEvery is how often at most one kind of event (a drop reason on a
// router, a master change) is logged: RFC 5798 §7.1 asks to log discarded
// packets, and a flood must not turn that into a log flood.
const logEvery = 10 * time.Second

// rateLog logs the first event of a key at once, holds back the ones that
// follow within logEvery, and logs them as one line with their count (and
// the details of the first of them) when the window ends. It is used by the
// runner's goroutine only. Details are built by a function called only for
// an event whose details are kept, so a flood of dropped packets costs a map
// lookup per packet, not a slice of boxed values.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	keys  map[rateKey]*rateEntry
	due   time.Time // earliest end of a window with held events; zero if none
}

type rateKey struct {
	kind string // a DropReason or another event kind
	v    *vr    // the virtual router, nil for packets not matched to one
}

type rateEntry struct {
	logged time.Time // when the last line was written
	held   uint64    // events since, not yet logged
	level  slog.Level
	msg    string
	attrs  []any // of the first held event
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, keys: map[rateKey]*rateEntry{}}
}

// event records one event; it is logged now unless another of its key was
// logged less than every ago. attrs must not be kept by the caller.
func (r *rateLog) event(now time.Time, k rateKey, level slog.Level, msg string, attrs func() []any) {
	e := r.keys[k]
	if e == nil {
		e = &rateEntry{}
		r.keys[k] = e
	}
	if !e.logged.IsZero() && now.Sub(e.logged) < r.every {
		if e.held == 0 {
			e.level, e.msg, e.attrs = level, msg, attrs()
		}
		e.held++
		if end := e.logged.Add(r.every); r.due.IsZero() || end.Before(r.due) {
			r.due = end
		}
		return
	}
	// A window ended without a flush (flush runs late under load): the
	// held events go into this line.
	n := e.held + 1
	e.logged, e.held, e.attrs = now, 0, nil
	r.log.Log(context.Background(), level, msg, append(attrs(), "count", n)...)
}

// next is when flush has something to log; ok is false when nothing is held.
func (r *rateLog) next() (time.Time, bool) { return r.due, !r.due.IsZero() }

// flush logs the held events of every window that has ended by now.
func (r *rateLog) flush(now time.Time) {
	r.due = time.Time{}
	for _, e := range r.keys {
		if e.held == 0 {
			continue
		}
		end := e.logged.Add(r.every)
		if now.Before(end) {
			if r.due.IsZero() || end.Before(r.due) {
				r.due = end
			}
			continue
		}
		r.log.Log(context.Background(), e.level, e.msg, append(e.attrs, "count", e.held, "over", now.Sub(e.logged).Round(time.Millisecond))...)
		e.logged, e.held, e.attrs = now, 0, nil
	}
}
