package cassandra

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// MutationLimit is the largest len(Key)+len(Value) of a mutation that
// Apply takes: the smallest native_transport_max_frame_size or
// max_mutation_size any node told at Open (Cassandra's defaults when
// none did), less rowSlack.
func (s *Store) MutationLimit() (int, string) { return s.rowLimit, s.rowLimitBy }

// learnRowLimit sets the row limit from what the nodes told.
func (s *Store) learnRowLimit(nodes []Node) {
	limit, by := int64(0), ""
	for _, n := range nodes {
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
	s.rowLimit, s.rowLimitBy = int(max(limit-rowSlack, 1)), by+fmt.Sprintf(", less %d bytes for the rest of the request", rowSlack)
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
