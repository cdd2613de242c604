package cassandra

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"github.com/gocql/gocql"
)

// TestMurmur3TokenOfEveryLength: the token of keys of every length from
// 0 to 40 bytes (every tail length, up to two blocks and a half), of
// bytes all >= 0x80 (negative as Java bytes) and of mixed bytes, is
// Cassandra's. The hashes were computed by gocql v1.7.0's
// internal/murmur.Murmur3H1, a port of Cassandra's
// MurmurHash.hash3_x64_128 independent of murmur3Token (the key of length
// n: byte i is 0x80|(29i+n)&0x7f, and 73i+11 mod 256). The empty key's
// token is Long.MIN_VALUE (Murmur3Partitioner.getToken: MINIMUM for an
// empty key), not its hash, 0.
func TestMurmur3TokenOfEveryLength(t *testing.T) {
	vectors := [][3]int64{ // length, hash of the high bytes, of the mixed bytes
		{0, 0, 0},
		{1, -1907894690725236177, -7840828743381159449},
		{2, -9010590805690549116, 6147868180715545328},
		{3, 4154162489425629063, 1689433974991522512},
		{4, 5275921518077633646, 6065123970102668344},
		{5, 6779063512598387704, -2990822105167051807},
		{6, -3732409708065351405, -6240626270847453205},
		{7, 4444172292912105952, 868971255698546078},
		{8, 6661998282201182307, 8506336711803322173},
		{9, 2957614224905755670, -6394234228798610064},
		{10, -7074588885146941244, 6937947334260047117},
		{11, -1832109669200980003, -1920144401305108535},
		{12, 1064262741344028538, 5075391458933332122},
		{13, 8004375924221987320, 4341584426712652849},
		{14, 5143365810721639290, 1730257071264839801},
		{15, -6713728664457533646, -469211355300858827},
		{16, -3275815821251863796, -5357947770463267687},
		{17, -5779492136539330714, 4682172051420314909},
		{18, -2941457314079130572, -241199687157559825},
		{19, -4236076103037712622, -7731594902230207726},
		{20, 6371754176368883626, -360247521742067650},
		{21, -1349822575146336418, -617311701032148198},
		{22, -4944279014868765803, -5417339237421209431},
		{23, -537040181127302591, -9177992395459683241},
		{24, -8508898926295092899, -6331210821553434548},
		{25, 8948382164827221504, 7136147291556284511},
		{26, -5125761497937290374, -3280499033417882039},
		{27, 1740653118041591011, 8537301822633380679},
		{28, -5480719752825558634, 3374082480455177480},
		{29, -1918690785374078942, -8604079845111720281},
		{30, 3855327884137641560, -8934289694840972654},
		{31, -7215790027998936397, -1207844418784778915},
		{32, -3528989711520421076, -5675880094008844003},
		{33, -5823735979521666548, 8727373706018165428},
		{34, 1644771885064776457, 1109835131997512801},
		{35, 7087682699837046355, -7333681653269694873},
		{36, -7855704133315029473, 740846217720381903},
		{37, -2456290219971663734, -8791992943617651193},
		{38, 50943923259384092, 6752091278352566594},
		{39, 9096828406762887626, 5018905743666842600},
		{40, 8437103483343661505, 1732257572915222370},
	}
	for _, v := range vectors {
		n := int(v[0])
		hi, mixed := make([]byte, n), make([]byte, n)
		for i := range n {
			hi[i] = byte(0x80 | (i*29+n)&0x7f)
			mixed[i] = byte(i*73 + 11)
		}
		for j, key := range [][]byte{hi, mixed} {
			want := v[1+j]
			if n == 0 {
				want = math.MinInt64
			}
			if got := murmur3Token(key); got != want {
				t.Errorf("token of %x (%d bytes): %d, want %d", key, n, got, want)
			}
		}
	}
}

// TestMurmur3Normalize: a hash of Long.MIN_VALUE is the token
// Long.MAX_VALUE (Murmur3Partitioner.normalize: MIN_VALUE is the minimum
// token, which no key has); every other hash is its own token.
func TestMurmur3Normalize(t *testing.T) {
	for h, want := range map[int64]int64{math.MinInt64: math.MaxInt64, math.MinInt64 + 1: math.MinInt64 + 1, -1: -1, 0: 0, math.MaxInt64: math.MaxInt64} {
		if got := normalize(h); got != want {
			t.Errorf("normalize(%d) = %d, want %d", h, got, want)
		}
	}
}

// node is a node of data center dc, rack rack, holding tokens (none: not
// on the ring yet).
func node(addr, dc, rack string, tokens []int64) *gocql.HostInfo {
	h := hostIn(addr, dc)
	setRack(h, rack)
	var s []string
	for _, t := range tokens {
		s = append(s, strconv.FormatInt(t, 10))
	}
	f := reflect.ValueOf(h).Elem().FieldByName("tokens")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(s))
	return h
}

// cassandraRing is a token ring as Cassandra's TokenMetadata holds it:
// the sorted tokens, their owners, and the topology of the owners (each
// node's data center and rack; the nodes and racks of each data center).
type cassandraRing struct {
	sorted []int64
	owner  map[int64]*gocql.HostInfo
	dcEps  map[string]map[*gocql.HostInfo]bool
	dcRack map[string]map[string]bool
}

func newCassandraRing(hosts []*gocql.HostInfo) *cassandraRing {
	c := &cassandraRing{owner: map[int64]*gocql.HostInfo{}, dcEps: map[string]map[*gocql.HostInfo]bool{}, dcRack: map[string]map[string]bool{}}
	for _, h := range hosts {
		for _, s := range h.Tokens() {
			t, _ := strconv.ParseInt(s, 10, 64)
			c.sorted = append(c.sorted, t)
			c.owner[t] = h
			if c.dcEps[h.DataCenter()] == nil {
				c.dcEps[h.DataCenter()], c.dcRack[h.DataCenter()] = map[*gocql.HostInfo]bool{}, map[string]bool{}
			}
			c.dcEps[h.DataCenter()][h] = true
			c.dcRack[h.DataCenter()][h.Rack()] = true
		}
	}
	slices.Sort(c.sorted)
	return c
}

// ringIterator is TokenMetadata.ringIterator(sortedTokens, start, false):
// every token once, from the first at or after start (firstTokenIndex:
// the one equal to start, else the insertion point, wrapping to 0).
func (c *cassandraRing) ringIterator(start int64) []int64 {
	i, found := slices.BinarySearch(c.sorted, start)
	if !found && i >= len(c.sorted) {
		i = 0
	}
	return append(slices.Clone(c.sorted[i:]), c.sorted[:i]...)
}

// simple is SimpleStrategy.calculateNaturalReplicas: the first rf nodes
// met around the ring from the key's token.
func (c *cassandraRing) simple(token int64, rf int) []*gocql.HostInfo {
	var replicas []*gocql.HostInfo
	for _, tk := range c.ringIterator(token) {
		if len(replicas) >= rf {
			break
		}
		if ep := c.owner[tk]; !slices.Contains(replicas, ep) {
			replicas = append(replicas, ep)
		}
	}
	return replicas
}

// nts is NetworkTopologyStrategy.calculateNaturalReplicas of Cassandra
// 3.0 to 5.0, line by line: DatacenterEndpoints.addEndpointAndCheckIfDone
// adds a node of a rack not seen yet, and a node of a rack seen while
// acceptableRackRepeats (rf less the data center's racks) lasts; the seen
// racks are (data center, rack) pairs shared by the data centers.
func (c *cassandraRing) nts(token int64, dcRF map[string]int) []*gocql.HostInfo {
	var replicas []*gocql.HostInfo // LinkedHashSet
	seenRacks := map[[2]string]bool{}
	type dcEndpoints struct{ rfLeft, acceptableRackRepeats int }
	dcs := map[string]*dcEndpoints{}
	dcsToFill := 0
	for dc, rf := range dcRF {
		nodeCount := len(c.dcEps[dc])
		if rf <= 0 || nodeCount <= 0 {
			continue
		}
		dcs[dc] = &dcEndpoints{min(rf, nodeCount), rf - len(c.dcRack[dc])}
		dcsToFill++
	}
	add := func(d *dcEndpoints, ep *gocql.HostInfo, location [2]string) bool {
		if d.rfLeft == 0 { // done()
			return false
		}
		if !seenRacks[location] { // racks.add(location): a new rack
			seenRacks[location] = true
			d.rfLeft--
			if slices.Contains(replicas, ep) {
				panic("assert added")
			}
			replicas = append(replicas, ep)
			return d.rfLeft == 0
		}
		if d.acceptableRackRepeats <= 0 {
			return false
		}
		if slices.Contains(replicas, ep) { // cannot repeat a node
			return false
		}
		replicas = append(replicas, ep)
		d.acceptableRackRepeats--
		d.rfLeft--
		return d.rfLeft == 0
	}
	for _, tk := range c.ringIterator(token) {
		if dcsToFill <= 0 {
			break
		}
		ep := c.owner[tk]
		location := [2]string{ep.DataCenter(), ep.Rack()}
		if d := dcs[location[0]]; d != nil && add(d, ep, location) {
			dcsToFill--
		}
	}
	return replicas
}

// nts2 is NetworkTopologyStrategy.calculateNaturalEndpoints of Cassandra
// 2.x, line by line: a node of a rack seen is skipped while the data
// center has racks not seen; when the last rack is met, the nodes skipped
// are added, in ring order, then every node met, up to rf. It places a
// key on the same nodes as nts (the first rf - racks repeats met, in
// another order).
func (c *cassandraRing) nts2(token int64, dcRF map[string]int) []*gocql.HostInfo {
	var replicas []*gocql.HostInfo
	dcReplicas, seenRacks, skipped := map[string][]*gocql.HostInfo{}, map[string]map[string]bool{}, map[string][]*gocql.HostInfo{}
	for dc := range dcRF {
		seenRacks[dc] = map[string]bool{}
	}
	sufficient := func(dc string) bool { return len(dcReplicas[dc]) >= min(len(c.dcEps[dc]), dcRF[dc]) }
	allSufficient := func() bool {
		for dc := range dcRF {
			if !sufficient(dc) {
				return false
			}
		}
		return true
	}
	add := func(dc string, ep *gocql.HostInfo) { // two sets
		if !slices.Contains(dcReplicas[dc], ep) {
			dcReplicas[dc] = append(dcReplicas[dc], ep)
		}
		if !slices.Contains(replicas, ep) {
			replicas = append(replicas, ep)
		}
	}
	for _, tk := range c.ringIterator(token) {
		if allSufficient() {
			break
		}
		ep := c.owner[tk]
		dc := ep.DataCenter()
		if _, ok := dcRF[dc]; !ok || sufficient(dc) {
			continue
		}
		if len(seenRacks[dc]) == len(c.dcRack[dc]) {
			add(dc, ep)
			continue
		}
		if rack := ep.Rack(); seenRacks[dc][rack] {
			if !slices.Contains(skipped[dc], ep) {
				skipped[dc] = append(skipped[dc], ep)
			}
		} else {
			add(dc, ep)
			seenRacks[dc][rack] = true
			if len(seenRacks[dc]) == len(c.dcRack[dc]) {
				for _, s := range skipped[dc] {
					if sufficient(dc) {
						break
					}
					add(dc, s)
				}
			}
		}
	}
	return replicas
}

func inDC(hs []*gocql.HostInfo, dc string) []*gocql.HostInfo {
	return slices.DeleteFunc(slices.Clone(hs), func(h *gocql.HostInfo) bool { return h.DataCenter() != dc })
}

func sameSet(a, b []*gocql.HostInfo) bool {
	return len(a) == len(b) && len(uniq(a)) == len(a) && !slices.ContainsFunc(a, func(h *gocql.HostInfo) bool { return !slices.Contains(b, h) })
}

// TestRingPlacesKeysAsCassandraOnRandomRings: on random rings (one to
// three data centers of one to eight nodes in one to four racks, one to
// eight tokens a node, nodes without tokens yet, tokens equal to keys'
// tokens or one off, names that join to the same "dc/rack"), every key's replicas
// are the nodes Cassandra places it on, under every replication:
// NetworkTopologyStrategy (Cassandra 3.0-5.0's algorithm: the same
// nodes, in the same order, in each data center; 2.x's: the same nodes)
// and SimpleStrategy, in the local data center and in all.
func TestRingPlacesKeysAsCassandraOnRandomRings(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	dcNames := [][]string{{"dc1"}, {"dc1", "dc2"}, {"a", "a/b", "dc3"}}
	rackNames := map[string][]string{"dc1": {"r1", "r2", "r3", "r4"}, "dc2": {"r1", "r2", "r3", "r4"}, "a": {"b/c", "r2", "b", "r4"}, "a/b": {"c", "r2", "b/c", "r4"}, "dc3": {"r1", "r2", "r3", "r4"}}
	checked := 0
	for ringN := range 200 {
		var keys [][]byte
		for range 50 {
			key := make([]byte, 1+r.IntN(40))
			for i := range key {
				key[i] = byte(r.Uint32())
			}
			keys = append(keys, key)
		}
		used := map[int64]bool{}
		token := func() int64 {
			for {
				var t int64
				switch r.IntN(6) {
				case 0: // a key's token (its primary replica is this node) or next to it
					t = murmur3Token(keys[r.IntN(len(keys))]) + int64(r.IntN(3)) - 1
				case 1:
					t = []int64{math.MinInt64 + 1, math.MaxInt64, 0}[r.IntN(3)]
				default:
					t = int64(r.Uint64())
				}
				if !used[t] {
					used[t] = true
					return t
				}
			}
		}
		dcs := dcNames[r.IntN(len(dcNames))]
		var hosts []*gocql.HostInfo
		for _, dc := range dcs {
			racks := 1 + r.IntN(4)
			for range 1 + r.IntN(8) {
				var tokens []int64
				if r.IntN(10) > 0 {
					for range 1 + r.IntN(8) {
						tokens = append(tokens, token())
					}
				}
				hosts = append(hosts, node(fmt.Sprintf("10.%d.%d.%d", ringN/200, ringN%200, len(hosts)+1), dc, rackNames[dc][r.IntN(racks)], tokens))
			}
		}
		r.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
		ring, c := newRing(hosts), newCassandraRing(hosts)
		if ring == nil {
			if len(c.sorted) != 0 {
				t.Fatalf("ring %d: no ring of %d tokens", ringN, len(c.sorted))
			}
			continue
		}
		for range 4 {
			nts := Replication{}
			for _, dc := range append(dcs, "nodc") {
				if n := r.IntN(7); n > 0 {
					nts[dc] = n
				}
			}
			simple := Replication{"": 1 + r.IntN(7)}
			for _, key := range keys {
				tk := murmur3Token(key)
				want, want2, wantSimple := c.nts(tk, nts), c.nts2(tk, nts), c.simple(tk, simple[""])
				if !sameSet(want, want2) {
					t.Fatalf("ring %d, %v: Cassandra's placements differ: %v and %v", ringN, nts, addrs(want), addrs(want2))
				}
				all := ring.replicas(key, nts, "")
				if !sameSet(all, want) {
					t.Fatalf("ring %d, key %x, %v: replicas %v, Cassandra's %v", ringN, key, nts, addrs(all), addrs(want))
				}
				if got := ring.replicas(key, simple, ""); !slices.Equal(got, wantSimple) {
					t.Fatalf("ring %d, key %x, %v: replicas %v, Cassandra's %v", ringN, key, simple, addrs(got), addrs(wantSimple))
				}
				for _, dc := range dcs {
					if got, want := ring.replicas(key, nts, dc), inDC(want, dc); !slices.Equal(got, want) {
						t.Fatalf("ring %d, key %x, %v: replicas in %s %v, Cassandra's %v", ringN, key, nts, dc, addrs(got), addrs(want))
					}
					if got, want := ring.replicas(key, simple, dc), inDC(wantSimple, dc); !slices.Equal(got, want) {
						t.Fatalf("ring %d, key %x, %v: replicas in %s %v, Cassandra's %v", ringN, key, simple, dc, addrs(got), addrs(want))
					}
				}
				checked++
			}
		}
	}
	t.Logf("%d placements checked", checked)
}

// TestRingOfTheNodesTokens: the ring is of Murmur3Partitioner's tokens,
// or none: not of another partitioner's (RandomPartitioner's go to
// 2^127), even where some of them would parse, nor of nodes that tell no
// tokens. Two nodes on one token (a node replacing another, both known
// for a moment) come in the order of their host ids, whatever order the
// driver named them in: every process places keys alike.
func TestRingOfTheNodesTokens(t *testing.T) {
	random := node("10.0.0.1", "dc1", "r1", nil)
	f := reflect.ValueOf(random).Elem().FieldByName("tokens")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf([]string{"1234", "85070591730234615865843651857942052864"}))
	if r := newRing([]*gocql.HostInfo{node("10.0.0.2", "dc1", "r1", []int64{5}), random}); r != nil {
		t.Errorf("a ring of RandomPartitioner's tokens: %d tokens, want none (nil)", len(r.tokens))
	}
	if r := newRing([]*gocql.HostInfo{node("10.0.0.3", "dc1", "r1", nil)}); r != nil {
		t.Errorf("a ring of a node without tokens: %+v, want none (nil)", r)
	}
	// A rack changed under the ring (the driver fills in a HostInfo's
	// empty fields in place): the ring places keys by the racks it
	// counted until it is made again, else a node would be a rack repeat
	// that the counts leave no room for, and a key would have 2 replicas.
	abc := []*gocql.HostInfo{node("10.0.0.6", "dc1", "a", []int64{-100}), node("10.0.0.7", "dc1", "b", []int64{0}), node("10.0.0.8", "dc1", "c", []int64{100})}
	r := newRing(abc)
	setRack(abc[2], "a")
	for i := range 20 {
		if got := r.replicas([]byte(fmt.Sprint("key", i)), Replication{"dc1": 3}, "dc1"); len(got) != 3 {
			t.Fatalf("a rack changed under the ring: replicas %v, want the three nodes", addrs(got))
		}
	}

	key := []byte("k")
	tk := murmur3Token(key)
	a, b := node("10.0.0.4", "dc1", "r1", []int64{tk, tk + 10}), node("10.0.0.5", "dc1", "r1", []int64{tk, tk - 10})
	for _, hosts := range [][]*gocql.HostInfo{{a, b}, {b, a}} {
		got := newRing(hosts).replicas(key, Replication{"": 2}, "")
		if want := []*gocql.HostInfo{a, b}; !slices.Equal(got, want) { // id-10.0.0.4 < id-10.0.0.5
			t.Errorf("two nodes on the key's token, named %v: replicas %v, want %v", addrs(hosts), addrs(got), addrs(want))
		}
	}
}
