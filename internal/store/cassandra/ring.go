package cassandra

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gocql/gocql"
)

// ring is the token ring of the nodes the driver knows, for placing keys
// as Cassandra does (Murmur3Partitioner): the driver's own placement under
// NetworkTopologyStrategy, with fewer racks in a data center than its
// replicas, names a node once per token of it that it meets on the ring,
// [A A B], and so misses a replica, C, which never started a plan of the
// key (TestRingPlacesKeysAsCassandra).
type ring struct {
	tokens []ringToken       // by token
	racks  map[string]int    // data center: its racks
	nodes  map[string]int    // data center: its nodes
	rack   map[string]string // host id: its rack
}

type ringToken struct {
	token int64
	host  *gocql.HostInfo
}

// newRing is the ring of hosts; nil when none of them tells its tokens as
// a Murmur3Partitioner's.
func newRing(hosts []*gocql.HostInfo) *ring {
	r := &ring{racks: map[string]int{}, nodes: map[string]int{}, rack: map[string]string{}}
	seen := map[[2]string]bool{} // data center, rack
	for _, h := range hosts {
		n := len(r.tokens)
		for _, s := range h.Tokens() {
			t, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil
			}
			r.tokens = append(r.tokens, ringToken{t, h})
		}
		if len(r.tokens) == n {
			continue
		}
		r.rack[h.HostID()] = h.Rack()
		loc := [2]string{h.DataCenter(), h.Rack()}
		r.nodes[h.DataCenter()]++
		if !seen[loc] {
			seen[loc] = true
			r.racks[h.DataCenter()]++
		}
	}
	if len(r.tokens) == 0 {
		return nil
	}
	slices.SortFunc(r.tokens, func(a, b ringToken) int {
		if c := cmpInt64(a.token, b.token); c != 0 {
			return c
		}
		return strings.Compare(a.host.HostID(), b.host.HostID())
	})
	return r
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// replicas are the nodes of data center dc ("": of every one) that hold
// key under replication repl, in the order Cassandra places them: from the
// first token at or after the key's, around the ring. SimpleStrategy
// (repl[""]): the first nodes met. NetworkTopologyStrategy, in each data
// center: a node of each rack first, then, when the data center has fewer
// racks than replicas, the first nodes met make up the difference
// (Cassandra's NetworkTopologyStrategy.calculateNaturalReplicas); at most
// as many as the data center has nodes.
func (r *ring) replicas(key []byte, repl Replication, dc string) []*gocql.HostInfo {
	i, _ := slices.BinarySearchFunc(r.tokens, murmur3Token(key), func(e ringToken, t int64) int { return cmpInt64(e.token, t) })
	if rf, ok := repl[""]; ok {
		var all []*gocql.HostInfo
		for j := 0; j < len(r.tokens) && len(all) < rf; j++ {
			if h := r.tokens[(i+j)%len(r.tokens)].host; !slices.Contains(all, h) {
				all = append(all, h)
			}
		}
		if dc == "" {
			return all
		}
		return slices.DeleteFunc(all, func(h *gocql.HostInfo) bool { return h.DataCenter() != dc })
	}
	if dc == "" {
		var out []*gocql.HostInfo
		for _, d := range slices.Sorted(maps.Keys(repl)) {
			out = append(out, r.replicas(key, Replication{d: repl[d]}, d)...)
		}
		return out
	}
	rf := repl[dc]
	left, repeats := min(rf, r.nodes[dc]), rf-r.racks[dc]
	out := make([]*gocql.HostInfo, 0, left)
	var racks []string
	for j := 0; j < len(r.tokens) && len(out) < left; j++ {
		h := r.tokens[(i+j)%len(r.tokens)].host
		if h.DataCenter() != dc || slices.Contains(out, h) {
			continue
		}
		if rack := r.rack[h.HostID()]; !slices.Contains(racks, rack) {
			racks = append(racks, rack)
		} else if repeats <= 0 {
			continue
		} else {
			repeats--
		}
		out = append(out, h)
	}
	return out
}

// murmur3Token is key's token under Murmur3Partitioner: the first half of
// MurmurHash3 x64 128 (seed 0), as Cassandra computes it (the bytes of the
// tail taken as signed), Long.MIN_VALUE being Long.MAX_VALUE (normalize);
// the empty key's is Long.MIN_VALUE, the minimum token (getToken), as
// Cassandra has it, though no key of a wail table is empty.
func murmur3Token(key []byte) int64 {
	if len(key) == 0 {
		return math.MinInt64
	}
	const (
		c1 = -8663945395140668459 // 0x87c37b91114253d5
		c2 = 5545529020109919103  // 0x4cf5ad432745937f
	)
	rotl := func(x int64, r uint) int64 { return int64(uint64(x)<<r | uint64(x)>>(64-r)) }
	fmix := func(k int64) int64 {
		k ^= int64(uint64(k) >> 33)
		k *= -49064778989728563 // 0xff51afd7ed558ccd
		k ^= int64(uint64(k) >> 33)
		k *= -4265267296055464877 // 0xc4ceb9fe1a85ec53
		k ^= int64(uint64(k) >> 33)
		return k
	}
	var h1, h2 int64
	n := len(key) / 16
	for b := range n {
		k1 := int64(binary.LittleEndian.Uint64(key[16*b:]))
		k2 := int64(binary.LittleEndian.Uint64(key[16*b+8:]))
		k1 *= c1
		k1 = rotl(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = rotl(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= c2
		k2 = rotl(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = rotl(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	tail := key[16*n:]
	var k1, k2 int64
	for j := len(tail) - 1; j >= 8; j-- {
		k2 ^= int64(int8(tail[j])) << (8 * (j - 8))
	}
	if len(tail) > 8 {
		k2 *= c2
		k2 = rotl(k2, 33)
		k2 *= c1
		h2 ^= k2
	}
	for j := min(len(tail), 8) - 1; j >= 0; j-- {
		k1 ^= int64(int8(tail[j])) << (8 * j)
	}
	if len(tail) > 0 {
		k1 *= c1
		k1 = rotl(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= int64(len(key))
	h2 ^= int64(len(key))
	h1 += h2
	h2 += h1
	h1 = fmix(h1)
	h2 = fmix(h2)
	return normalize(h1 + h2)
}

// normalize is Murmur3Partitioner.normalize: Long.MIN_VALUE, the minimum
// token, which no key has, is Long.MAX_VALUE.
func normalize(h int64) int64 {
	if h == math.MinInt64 {
		return math.MaxInt64
	}
	return h
}
