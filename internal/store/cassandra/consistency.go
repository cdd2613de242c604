package cassandra

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gocql/gocql"
)

// Consistency is a Cassandra consistency level, named as in CQL
// ("local_quorum"; case does not matter).
type Consistency = gocql.Consistency

// ParseConsistency parses a level name. ANY and the serial levels are
// refused: an ANY write may be acknowledged with only a hint stored, which
// no read sees (and wail's tables drop hints), and serial levels are for
// lightweight transactions, which the store does not use.
func ParseConsistency(name string) (Consistency, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "ONE":
		return gocql.One, nil
	case "TWO":
		return gocql.Two, nil
	case "THREE":
		return gocql.Three, nil
	case "QUORUM":
		return gocql.Quorum, nil
	case "ALL":
		return gocql.All, nil
	case "LOCAL_QUORUM":
		return gocql.LocalQuorum, nil
	case "EACH_QUORUM":
		return gocql.EachQuorum, nil
	case "LOCAL_ONE":
		return gocql.LocalOne, nil
	}
	return 0, fmt.Errorf("consistency level %q: use one, two, three, quorum, all, local_one, local_quorum or each_quorum", name)
}

// levelName is a level's name as Levels and the errors show it.
func levelName(c Consistency) string { return strings.ToLower(c.String()) }

// Replication is a keyspace's replication: the replication factor per
// data center. SimpleStrategy has one entry under the name "" (every node).
type Replication map[string]int

// ParseReplication reads a keyspace's replication options, as
// system_schema.keyspaces holds them and as the configuration gives them:
// {class: SimpleStrategy, replication_factor: 3} or
// {class: NetworkTopologyStrategy, dc1: 3, dc2: 3}. The class may be
// given in full (org.apache.cassandra.locator.…).
func ParseReplication(opts map[string]string) (Replication, error) {
	class := opts["class"]
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		class = class[i+1:]
	}
	r := Replication{}
	for k, v := range opts {
		if k == "class" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("replication %s: %q is not a replication factor", k, v)
		}
		switch {
		case class == "SimpleStrategy" && k == "replication_factor":
			r[""] = n
		case class == "NetworkTopologyStrategy" && k != "replication_factor":
			if n > 0 {
				r[k] = n
			}
		default:
			return nil, fmt.Errorf("replication option %q does not go with class %q", k, opts["class"])
		}
	}
	if class != "SimpleStrategy" && class != "NetworkTopologyStrategy" {
		return nil, fmt.Errorf("replication class %q: use SimpleStrategy or NetworkTopologyStrategy", opts["class"])
	}
	if r.Total() == 0 {
		return nil, fmt.Errorf("replication %v has no replicas", opts)
	}
	return r, nil
}

// CQL renders r as the replication map of CREATE KEYSPACE.
func (r Replication) CQL() string {
	if n, ok := r[""]; ok {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", n)
	}
	dcs := make([]string, 0, len(r))
	for dc := range r {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range dcs {
		fmt.Fprintf(&b, ", '%s': %d", strings.ReplaceAll(dc, "'", "''"), r[dc])
	}
	b.WriteString("}")
	return b.String()
}

// Total is the number of replicas of each row.
func (r Replication) Total() int {
	n := 0
	for _, f := range r {
		n += f
	}
	return n
}

func quorum(n int) int { return n/2 + 1 }

// reach is how many replicas a level involves at least: in total, and in
// each data center (for a write: that hold it once acknowledged; for a
// read: that it consults), however the coordinator picks them.
func (r Replication) reach(c Consistency, localDC string) (total int, perDC map[string]int) {
	perDC = map[string]int{}
	local := localDC
	if _, simple := r[""]; simple {
		local = "" // LOCAL_* levels count every replica under SimpleStrategy
	}
	switch c {
	case gocql.LocalOne:
		perDC[local] = 1
		return 1, perDC
	case gocql.LocalQuorum:
		q := quorum(r[local])
		perDC[local] = q
		return q, perDC
	case gocql.EachQuorum:
		for dc, f := range r {
			perDC[dc] = quorum(f)
			total += quorum(f)
		}
		return total, perDC
	}
	all := r.Total()
	switch c {
	case gocql.One:
		total = 1
	case gocql.Two:
		total = 2
	case gocql.Three:
		total = 3
	case gocql.Quorum:
		total = quorum(all)
	case gocql.All:
		total = all
	}
	for dc, f := range r {
		perDC[dc] = max(0, total-(all-f)) // what the other data centers cannot take
	}
	return total, perDC
}

// Overlaps reports whether every read at level read consults at least one
// replica that holds every write acknowledged at level write, with
// replication r and the reader and writers in data center localDC. The
// resolver's strongest read must overlap every table's writes, or it can
// miss an acknowledged write (invariant 1).
func (r Replication) Overlaps(write, read Consistency, localDC string) bool {
	wt, wdc := r.reach(write, localDC)
	rt, rdc := r.reach(read, localDC)
	if wt+rt > r.Total() {
		return true
	}
	for dc, f := range r {
		if wdc[dc]+rdc[dc] > f {
			return true
		}
	}
	return false
}

// Satisfiable reports whether a level can be met at all with replication r
// (THREE with two replicas cannot), naming why not.
func (r Replication) Satisfiable(c Consistency, localDC string) error {
	total, perDC := r.reach(c, localDC)
	if total == 0 || total > r.Total() {
		return fmt.Errorf("%s needs %d replicas, the keyspace has %d (replication %s)", levelName(c), total, r.Total(), r.CQL())
	}
	for dc, n := range perDC {
		if n > r[dc] || (n > 0 && r[dc] == 0) {
			return fmt.Errorf("%s needs %d replicas in data center %q, which has %d (replication %s)", levelName(c), n, dc, r[dc], r.CQL())
		}
	}
	return nil
}
