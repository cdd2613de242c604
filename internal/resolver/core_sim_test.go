package resolver

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// sim is a deterministic model of the world around one Core: writers that
// log intents and then write a store (sometimes late, sometimes never), a
// replica that lags the primary, reads that fail, and a bus that
// acknowledges publishes late. It checks the resolver's invariants.
type sim struct {
	rng  *rand.Rand
	core *Core
	now  time.Time
	keys []string

	nextOff int64
	logical uint64
	history map[string][]stored // per key, every applied version in order
	applies []apply             // store writes not yet applied
	aborts  []pendingAbort      // ABORTs the proxy logs after an ambiguous failure
	reads   []ReadResult        // outstanding reads, answered from the state when issued
	unacked []intent.Event

	log    []Entry // the intent log
	params Params
	writes []write // every intent logged (not aborts)
	events map[string][]uint64
	unmat  map[uint64]bool
	commit int64
	wakeAt time.Time
}

type stored struct {
	at time.Time
	v  uint64
	d  bool
}

type apply struct {
	at  time.Time
	key string
	v   uint64
	del bool
}

type pendingAbort struct {
	at  time.Time
	key string
	v   uint64
}

type write struct {
	key     string
	v       uint64
	applied bool
	failed  bool
}

const replicaLag = 15 * time.Millisecond

func newSim(seed int64) *sim {
	p := Params{Table: "t", Window: 80 * time.Millisecond, Levels: 2,
		BackoffMin: 2 * time.Millisecond, BackoffMax: 16 * time.Millisecond, Horizon: time.Minute,
		FirstReadDelay: time.Duration(seed%3) * time.Millisecond}
	return &sim{
		rng: rand.New(rand.NewSource(seed)), core: NewCore(p, 0, nil), now: t0, params: p,
		keys: []string{"a", "b", "c", "d", "e"}, history: map[string][]stored{},
		events: map[string][]uint64{}, unmat: map[uint64]bool{},
	}
}

func (s *sim) run(t *testing.T, steps int) {
	for i := 0; i < steps; i++ {
		s.step(t, i < steps*2/3)
		if s.rng.Intn(500) == 0 {
			s.restart(t)
		}
	}
	// writes stop: let everything settle (the window bounds how long)
	for i := 0; i < 5000 && !s.quiet(); i++ {
		s.step(t, false)
	}
	if !s.quiet() {
		t.Fatalf("did not settle: %d unresolved, %d reads, %d unacked", s.core.Unresolved(), len(s.reads), len(s.unacked))
	}
	s.checkFinal(t)
}

func (s *sim) quiet() bool {
	return s.core.Unresolved() == 0 && len(s.reads) == 0 && len(s.unacked) == 0 && len(s.applies) == 0 && len(s.aborts) == 0
}

// logAborts appends the ABORTs that are due.
func (s *sim) logAborts() {
	kept := s.aborts[:0]
	for _, a := range s.aborts {
		if s.now.Before(a.at) {
			kept = append(kept, a)
			continue
		}
		e := ent(s.nextOff, a.key, intent.Abort, a.v)
		s.nextOff++
		s.log = append(s.log, e)
		s.core.Ingest(s.now, []Entry{e})
		s.drain(nil)
	}
	s.aborts = kept
}

func (s *sim) step(t *testing.T, writing bool) {
	s.now = s.now.Add(time.Millisecond)
	if writing && s.rng.Intn(3) == 0 {
		s.newWrite()
	}
	s.applyDue()
	s.logAborts()
	for j := 0; j < 3 && len(s.reads) > 0; j++ {
		i := s.rng.Intn(len(s.reads))
		res := s.reads[i]
		s.reads = append(s.reads[:i], s.reads[i+1:]...)
		s.core.ReadDone(s.now, res)
		s.drain(t)
	}
	if len(s.unacked) > 0 && s.rng.Intn(2) == 0 {
		evs := s.unacked
		s.unacked = nil
		s.core.Published(s.now, evs)
		s.drain(t)
	}
	if !s.wakeAt.IsZero() && !s.now.Before(s.wakeAt) {
		s.core.Tick(s.now)
		s.drain(t)
	}
}

func (s *sim) newWrite() {
	key := s.keys[s.rng.Intn(len(s.keys))]
	if s.rng.Intn(2) == 0 { // a cold key: often its last write is its only one
		key = fmt.Sprintf("cold-%d", s.rng.Intn(300))
	}
	s.logical++
	v := ver(int(s.now.Sub(t0)/time.Millisecond), s.logical%1000)
	del := s.rng.Intn(6) == 0
	op := intent.Upsert
	if del {
		op = intent.Delete
	}
	entries := []Entry{ent(s.nextOff, key, op, v)}
	s.nextOff++
	w := write{key: key, v: v}
	switch r := s.rng.Intn(20); {
	case r == 0: // the store write fails and the proxy logs an ABORT
		w.failed = true
		entries = append(entries, ent(s.nextOff, key, intent.Abort, v))
		s.nextOff++
	case r == 2: // the store write lands but the proxy is told it failed:
		// it logs an ABORT right after, while reads may be in flight
		at := s.now.Add(time.Duration(s.rng.Intn(5)) * time.Millisecond)
		s.applies = append(s.applies, apply{at: at, key: key, v: v, del: del})
		s.aborts = append(s.aborts, pendingAbort{at: at.Add(time.Millisecond), key: key, v: v})
		w.failed = true
	case r == 1: // the store write lands after the visibility window
		s.applies = append(s.applies, apply{at: s.now.Add(200 * time.Millisecond), key: key, v: v, del: del})
	default: // the store write lands soon after the intent
		s.applies = append(s.applies, apply{at: s.now.Add(time.Duration(s.rng.Intn(20)) * time.Millisecond), key: key, v: v, del: del})
	}
	s.writes = append(s.writes, w)
	s.log = append(s.log, entries...)
	s.core.Ingest(s.now, entries)
	s.drain(nil)
}

// restart models a resolver crash: unacknowledged events never reached the
// bus, outstanding reads are lost, and a new core resumes from the committed
// offset with the last published versions found on the bus.
func (s *sim) restart(t *testing.T) {
	for _, e := range s.unacked {
		k := string(e.Key)
		evs := s.events[k]
		if len(evs) > 0 && evs[len(evs)-1] == e.Version {
			s.events[k] = evs[:len(evs)-1]
		}
	}
	s.unacked, s.reads = nil, nil
	last := map[string]uint64{}
	for k, evs := range s.events {
		if len(evs) > 0 {
			last[k] = evs[len(evs)-1]
		}
	}
	s.core = NewCore(s.params, s.commit, last)
	s.core.Ingest(s.now, s.log[s.commit:])
	s.drain(t)
}

func (s *sim) applyDue() {
	kept := s.applies[:0]
	for _, a := range s.applies {
		if s.now.Before(a.at) {
			kept = append(kept, a)
			continue
		}
		h := s.history[a.key]
		if len(h) == 0 || h[len(h)-1].v < a.v { // last writer wins
			s.history[a.key] = append(h, stored{at: s.now, v: a.v, d: a.del})
			for i := range s.writes {
				if s.writes[i].v == a.v && s.writes[i].key == a.key {
					s.writes[i].applied = true
				}
			}
		}
	}
	s.applies = kept
}

// answer reads the primary (level 1) or a replica that lags (level 0).
func (s *sim) answer(rq ReadRequest) ReadResult {
	r := ReadResult{Key: rq.Key, Seq: rq.Seq}
	if s.rng.Intn(25) == 0 {
		r.Err = fmt.Errorf("injected read error")
		return r
	}
	asOf := s.now
	if rq.Level == 0 {
		asOf = s.now.Add(-replicaLag)
	}
	h := s.history[string(rq.Key)]
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].at.After(asOf) {
			r.Found = true
			r.Row = store.Row{Version: h[i].v, Deleted: h[i].d, Value: []byte(fmt.Sprint(h[i].v))}
			break
		}
	}
	return r
}

func (s *sim) drain(t *testing.T) {
	r := s.core.Ready()
	for _, rq := range r.Reads {
		s.reads = append(s.reads, s.answer(rq)) // the read runs now, its answer comes later
	}
	s.wakeAt = r.Wake
	for _, e := range r.Events {
		k := string(e.Key)
		evs := s.events[k]
		if len(evs) > 0 && evs[len(evs)-1] >= e.Version && t != nil {
			t.Fatalf("key %s: event version %d after %d: not strictly increasing", k, e.Version, evs[len(evs)-1])
		}
		if !s.wasStored(k, e.Version) && t != nil {
			t.Fatalf("key %s: event version %d was never stored", k, e.Version)
		}
		s.events[k] = append(evs, e.Version)
		s.unacked = append(s.unacked, e)
	}
	for _, u := range r.Unmaterialized {
		for _, v := range u.Versions {
			s.unmat[v] = true
		}
	}
	if r.Commit >= 0 {
		if r.Commit < s.commit && t != nil {
			t.Fatalf("commit went back from %d to %d", s.commit, r.Commit)
		}
		s.commit = r.Commit
	}
}

func (s *sim) wasStored(key string, v uint64) bool {
	for _, h := range s.history[key] {
		if h.v == v {
			return true
		}
	}
	return false
}

func (s *sim) checkFinal(t *testing.T) {
	if s.commit != s.nextOff {
		t.Fatalf("commit %d, want end %d", s.commit, s.nextOff)
	}
	// every acknowledged, stored write leads to an event at or above it,
	// unless the resolver reported it unmaterialized
	for _, w := range s.writes {
		if w.failed || !w.applied || s.unmat[w.v] {
			continue
		}
		evs := s.events[w.key]
		if len(evs) == 0 || evs[len(evs)-1] < w.v {
			t.Fatalf("key %s: write %d has no event at or above it (events %v)", w.key, w.v, evs)
		}
	}
	// once writes stop, the last event equals the store's state
	keys := make([]string, 0, len(s.history))
	for k := range s.history {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := s.history[k]
		last := h[len(h)-1].v
		if s.unmat[last] {
			continue
		}
		evs := s.events[k]
		if len(evs) == 0 || evs[len(evs)-1] != last {
			t.Fatalf("key %s: store holds %d, last event %v", k, last, evs)
		}
	}
}
