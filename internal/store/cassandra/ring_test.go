package cassandra

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"github.com/gocql/gocql"
)

// TestMurmur3Token: keys' tokens are Cassandra's (Murmur3Partitioner): the
// driver's test vectors (from the DataStax Java driver), through every
// length of the tail, and a key whose tail bytes are negative as Java
// bytes.
func TestMurmur3Token(t *testing.T) {
	series := []uint64{
		0x0000000000000000, 0x2ac9debed546a380, 0x649e4eaa7fc1708e, 0xce68f60d7c353bdb, 0x0f95757ce7f38254,
		0x0f04e459497f3fc1, 0x88c0a92586be0a27, 0x13eb9fb82606f7a6, 0x8236039b7387354d, 0x4c1e87519fe738ba,
		0x3f9652ac3effeb24, 0x3f33760ded9006c6, 0xaed70a6631854cb1, 0x8a299a8f8e0e2da7, 0x624b675c779249a6,
		0xa4b203bb1d90b9a3, 0xa3293ad698ecb99a, 0xbc740023dbd50048, 0x3fe5ab9837d25cdd, 0x2d0338c1ca87d132,
	}
	key := ""
	for i, hash := range series {
		want := int64(hash)
		if key == "" {
			want = math.MinInt64 // not its hash: the minimum token (TestMurmur3TokenOfEveryLength)
		}
		if got := murmur3Token([]byte(key)); got != want {
			t.Errorf("token of %q: %d, want %d", key, got, want)
		}
		key += strconv.Itoa(i % 10)
	}
	for key, want := range map[string]uint64{
		"hello": 0xcbd8a7b341bd9b02, "hello, world": 0x342fac623a5ebc8e, "19 Jan 2038 at 3:14:07 AM": 0xb89e5988b737affc,
		"The quick brown fox jumps over the lazy dog.": 0xcd99481f9ee902c9,
	} {
		if got := murmur3Token([]byte(key)); got != int64(want) {
			t.Errorf("token of %q: %d, want %d", key, got, int64(want))
		}
	}
	signed, _ := hex.DecodeString("00104327529fb645dd00b883ec39ae448bb800000400066a6b00")
	if got := murmur3Token(signed); got != -9223371632693506265 {
		t.Errorf("token of %x: %d, want -9223371632693506265", signed, got)
	}
}

// driverPlan is the driver's token-aware plan of key up to its round
// robin: its replicas, in ring order (unshuffled).
func driverPlan(p *hostPolicy, key string) []*gocql.HostInfo {
	next := p.HostSelectionPolicy.Pick(routed{(&gocql.Query{}).WithContext(context.Background()), []byte(key), p.ks})
	var out []*gocql.HostInfo
	for h := next(); h != nil && h.Info() != replicasEnd; h = next() {
		out = append(out, h.Info())
	}
	return out
}

// uniq is hs without the nodes named before.
func uniq(hs []*gocql.HostInfo) (out []*gocql.HostInfo) {
	for _, h := range hs {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func addrs(hs []*gocql.HostInfo) (out []string) {
	for _, h := range hs {
		out = append(out, h.ConnectAddress().String()+"/"+h.Rack())
	}
	return out
}

// TestRingPlacesKeysAsCassandra: a key's replicas are the nodes Cassandra
// places it on. Its primary replica is the driver's (the same tokens and
// ring); with one rack, the first nodes met around the ring, each once:
// the driver's replicas name a node once per token of it they meet, [A A
// B], and miss C, which then never started the key's plans; with as many
// racks as replicas, the driver's.
func TestRingPlacesKeysAsCassandra(t *testing.T) {
	sc := &schema{}
	p, hosts := ringPolicy(t, 4, sc)
	p.AddHost(hosts[3])
	r := p.ring.Load()
	missed := 0
	for i := range 500 {
		key := fmt.Sprint("key", i)
		if got, want := r.replicas([]byte(key), Replication{"dc1": 1}, "dc1")[0], driverPlan(p, key)[0]; got != want {
			t.Fatalf("key %q: primary replica %s, the driver's %s", key, got.ConnectAddress(), want.ConnectAddress())
		}
	}
	p.learnReplicas() // the driver's replicas: dc1: 3
	for i := range 500 {
		key := fmt.Sprint("key", i)
		got, driver := r.replicas([]byte(key), Replication{"dc1": 3}, "dc1"), uniq(driverPlan(p, key))
		if len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
			t.Fatalf("key %q: replicas %v, want three nodes", key, addrs(got))
		}
		if !slices.Equal(got[:len(driver)], driver) {
			t.Fatalf("key %q: replicas %v, the driver's %v: want them to begin so", key, addrs(got), addrs(driver))
		}
		if len(driver) < 3 {
			missed++
		}
		if s := r.replicas([]byte(key), Replication{"": 3}, ""); !slices.Equal(s, got) {
			t.Fatalf("key %q: SimpleStrategy's replicas %v, NetworkTopologyStrategy's with one rack %v", key, addrs(s), addrs(got))
		}
	}
	t.Logf("the driver's replicas of %d keys of 500 miss a replica", missed)
	if missed == 0 {
		t.Errorf("the driver's replicas miss none: the test shows nothing")
	}

	// Nodes of another data center do not change where keys go in this
	// one, and take that one's replicas.
	other := []*gocql.HostInfo{ringHost("10.0.1.1", []string{"-5", "7", "300"}), ringHost("10.0.1.2", []string{"-8", "9", "400"})}
	for _, h := range other {
		f := reflect.ValueOf(h).Elem().FieldByName("dataCenter")
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetString("dc2")
	}
	both := newRing(append(slices.Clone(hosts), other...))
	for i := range 100 {
		key := []byte(fmt.Sprint("key", i))
		repl := Replication{"dc1": 3, "dc2": 1}
		local, all := both.replicas(key, repl, "dc1"), both.replicas(key, repl, "")
		if !slices.Equal(local, r.replicas(key, repl, "dc1")) || len(all) != 4 || !slices.Equal(all[:3], local) || all[3].DataCenter() != "dc2" {
			t.Fatalf("two data centers: replicas in dc1 %v, in all %v; in dc1 alone %v", addrs(local), addrs(all), addrs(r.replicas(key, repl, "dc1")))
		}
	}

	// Each node in a rack of its own (as many racks as replicas): the
	// driver's replicas are right.
	for i, h := range hosts {
		setRack(h, fmt.Sprint("r", i))
	}
	p.RemoveHost(hosts[3])
	p.AddHost(hosts[3])
	if err := p.learn(); err != nil { // the driver's replicas on the new racks
		t.Fatal(err)
	}
	r = p.ring.Load()
	for i := range 500 {
		key := fmt.Sprint("key", i)
		if got, driver := r.replicas([]byte(key), Replication{"dc1": 3}, "dc1"), driverPlan(p, key); !slices.Equal(got, driver) {
			t.Fatalf("key %q, four racks: replicas %v, the driver's %v", key, addrs(got), addrs(driver))
		}
	}
	// Two racks of two nodes, three replicas: one of each rack, then the
	// first node met.
	for i, h := range hosts {
		setRack(h, fmt.Sprint("r", i%2))
	}
	p.RemoveHost(hosts[3])
	p.AddHost(hosts[3])
	r = p.ring.Load()
	for i := range 500 {
		got := r.replicas([]byte(fmt.Sprint("key", i)), Replication{"dc1": 3}, "dc1")
		racks := map[string]bool{}
		for _, h := range got {
			racks[h.Rack()] = true
		}
		if len(got) != 3 || len(racks) != 2 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
			t.Fatalf("two racks: replicas %v, want three nodes of both racks", addrs(got))
		}
	}
}

// TestPlacementNeedsNoSchemaRead: a node that joins is placed at once,
// from the tokens the driver tells, without reading the schema: the
// replicas do not wait for the control connection.
func TestPlacementNeedsNoSchemaRead(t *testing.T) {
	sc := &schema{}
	p, hosts := ringPolicy(t, 4, sc)
	p.learnReplicas()
	sc.down.Store(true)
	p.AddHost(hosts[3])
	n := 0
	for i := range 40 {
		if starts(p, fmt.Sprint("key", i))[hosts[3].ConnectAddress().String()] > 0 {
			n++
		}
	}
	if n < 20 {
		t.Errorf("the node that joined while the schema cannot be read starts the plans of %d keys of 40 (each of 4 nodes holds three in four)", n)
	}
}
