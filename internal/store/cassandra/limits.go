package cassandra

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cassandra refuses a request larger than native_transport_max_frame_size
// ("Request is too big") and a row larger than max_mutation_size (half of
// commitlog_segment_size unless set): 16 MiB each by default. Such a write
// can never be stored, however often it is tried, so the store tells the
// proxy the largest key and value it takes (store.MutationLimiter), and
// the proxy refuses larger ones up front, as an invalid argument naming
// the setting, rather than logging an intent, aborting it and telling the
// client to retry.

// defaultRequestLimit is Cassandra's default native_transport_max_frame_size
// and max_mutation_size, assumed when no node tells its own.
const defaultRequestLimit = 16 << 20

// rowSlack is what the limit leaves for the rest of the INSERT's frame
// and of the mutation: the statement's id and flags, the version, the
// deleted flag, the schema id, the timestamp, the table id, lengths. A
// few hundred bytes; TestRowLimit writes a row of exactly the limit.
const rowSlack = 1 << 10

// rowLimitTTL is how long the row limit stands before MutationLimit asks
// the nodes again: a node added to the cluster, or restarted with other
// settings, is seen within it.
const rowLimitTTL = time.Minute

// limits is the row limit and the write bound, and what the nodes told
// of them.
type limits struct {
	mu         sync.Mutex
	rowLimit   int    // the largest key and value Apply takes
	rowLimitBy string // what sets it, for messages
	// writeTimeout is the bound of a write (sendable): the largest
	// write_request_timeout a node told, at least the configured one
	// (Store.writeFloor), Cassandra's default when neither.
	writeTimeout time.Duration
	at           time.Time
	told         map[string]Node // by host id: the last settings each node told
	refreshing   bool
}

// MutationLimit is the largest len(Key)+len(Value) of a mutation that
// Apply takes: the smallest native_transport_max_frame_size or
// max_mutation_size any node of the cluster told (Cassandra's defaults
// when none did), less rowSlack. It never waits: once the limit is older
// than rowLimitTTL, or a write was refused as too large, it asks the nodes
// again in the background and returns the limit it has meanwhile.
func (s *Store) MutationLimit() (int, string) {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	s.refreshDueLocked()
	return s.limits.rowLimit, s.limits.rowLimitBy
}

// writeBound is how long after the coordinator received a write a replica
// may still apply it: the largest write_request_timeout of the nodes,
// asked again, as the row limit, once it is rowLimitTTL old (a node
// restarted with a larger one, or given it by nodetool settimeout, is seen
// within that), never below the configured one. It never waits.
func (s *Store) writeBound() time.Duration {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	s.refreshDueLocked()
	return s.limits.writeTimeout
}

// refreshDueLocked starts asking the nodes in the background once what
// they told is rowLimitTTL old (or a write was refused as too large).
func (s *Store) refreshDueLocked() {
	if s.askLimits != nil && !s.limits.refreshing && s.clock().Sub(s.limits.at) >= rowLimitTTL && !s.closed.Load() {
		s.limits.refreshing = true
		s.bg.Add(1)
		go s.refreshLimits()
	}
}

// refreshLimits asks every node for its settings and sets the row limit
// and the write bound.
func (s *Store) refreshLimits() {
	defer s.bg.Done()
	nodes, err := s.askLimits(s.bgCtx)
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	s.limits.refreshing = false
	if err != nil {
		s.limits.at = s.clock() // ask again after the TTL, not at every write
		return
	}
	s.learnRowLimitLocked(nodes)
}

// clock is the store's clock: time.Now unless a test set another.
func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// tooLarge reports whether Cassandra refused a write for its size (the
// frame: "Request is too big"; the row: "Rejected an oversized mutation").
func tooLarge(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "too big") || strings.Contains(m, "oversized mutation") || strings.Contains(m, "max_mutation_size")
}

// noteWriteError makes the next MutationLimit ask the nodes again when a
// write was refused for its size: a node's limit is lower than the store
// knew (it was added, or restarted with other settings, since).
func (s *Store) noteWriteError(err error) {
	if err == nil || !tooLarge(err) {
		return
	}
	s.limits.mu.Lock()
	s.limits.at = time.Time{}
	s.limits.mu.Unlock()
}

// learnRowLimit sets the row limit and the write bound from what the
// nodes told.
func (s *Store) learnRowLimit(nodes []Node) {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	s.learnRowLimitLocked(nodes)
}

// learnRowLimitLocked sets the row limit and the write bound from nodes,
// the cluster's nodes as the driver knows them now: a node that did not
// answer counts with what it told last, and so does a setting a node did
// not tell this time (it answered system.local, but its settings could not
// be read: forgotten, a larger write_request_timeout would no longer bound
// the writes, or a smaller size no longer the rows); a node no longer
// listed (removed) counts no more.
func (s *Store) learnRowLimitLocked(nodes []Node) {
	told := map[string]Node{}
	for _, n := range nodes {
		id := cmp.Or(n.HostID, n.Address)
		last, ok := s.limits.told[id]
		switch {
		case n.MaxFrameSize > 0 || n.MaxMutationSize > 0 || n.WriteRequestTimeout > 0 || n.Answered:
			if ok {
				n.MaxFrameSize = cmp.Or(n.MaxFrameSize, last.MaxFrameSize)
				n.MaxMutationSize = cmp.Or(n.MaxMutationSize, last.MaxMutationSize)
				n.WriteRequestTimeout = cmp.Or(n.WriteRequestTimeout, last.WriteRequestTimeout)
			}
			told[id] = n
		case ok:
			told[id] = last
		}
	}
	s.limits.told, s.limits.at = told, s.clock()
	sorted := slices.SortedFunc(maps.Values(told), func(a, b Node) int { return strings.Compare(a.Address, b.Address) })
	s.limits.writeTimeout = s.writeFloor
	for _, n := range sorted {
		s.limits.writeTimeout = max(s.limits.writeTimeout, n.WriteRequestTimeout)
	}
	if s.limits.writeTimeout <= 0 {
		s.limits.writeTimeout = DefaultWriteRequestTimeout
	}
	limit, by := int64(0), ""
	for _, n := range sorted {
		for _, st := range []struct {
			name string
			v    int64
		}{{"native_transport_max_frame_size", n.MaxFrameSize}, {"max_mutation_size", n.MaxMutationSize}} {
			if st.v > 0 && (limit == 0 || st.v < limit) {
				limit, by = st.v, fmt.Sprintf("%s=%d bytes on Cassandra node %s", st.name, st.v, n.Address)
			}
		}
	}
	if limit == 0 {
		limit, by = defaultRequestLimit, fmt.Sprintf("Cassandra's default native_transport_max_frame_size and max_mutation_size, %d bytes (no node told its own)", defaultRequestLimit)
	}
	s.limits.rowLimit, s.limits.rowLimitBy = int(max(limit-rowSlack, 1)), by+fmt.Sprintf(", less %d bytes for the rest of the request", rowSlack)
}

// sizeSetting records a size setting of node n from system_views.settings
// (the names of Cassandra 4.1 and later, with units, or of 4.0, in MB or
// KB); it reports whether name is one.
func sizeSetting(n *Node, name, value string) bool {
	var dst *int64
	unit := ""
	switch name {
	case "native_transport_max_frame_size":
		dst = &n.MaxFrameSize
	case "native_transport_max_frame_size_in_mb":
		dst, unit = &n.MaxFrameSize, "mib"
	case "max_mutation_size":
		dst = &n.MaxMutationSize
	case "max_mutation_size_in_kb":
		dst, unit = &n.MaxMutationSize, "kib"
	default:
		return false
	}
	if *dst > 0 && unit != "" || strings.TrimSpace(value) == "" {
		return true // the setting with units wins; null: not told
	}
	b, err := parseCassandraSize(value + unit)
	if err != nil {
		n.Err = fmt.Errorf("%s %q: %w", name, value, err)
		return true
	}
	*dst = b
	return true
}

// parseCassandraSize reads a size as Cassandra prints its settings:
// "16MiB", "16384KiB", "53687091B" (also "16mb", "16m").
func parseCassandraSize(v string) (int64, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if i == 0 || v == "" {
		return 0, errors.New("not a size")
	}
	num, unit := v, ""
	if i > 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New("not a size")
	}
	var shift uint
	switch unit {
	case "", "b":
	case "kib", "kb", "k":
		shift = 10
	case "mib", "mb", "m":
		shift = 20
	case "gib", "gb", "g":
		shift = 30
	default:
		return 0, errors.New("not a size")
	}
	if n > (1<<62)>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}
