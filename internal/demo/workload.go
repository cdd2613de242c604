package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// Order statuses, in the order an order goes through them.
var statuses = [...]string{"placed", "paid", "picked_up", "delivered"}

const delivered = len(statuses) - 1

// order is the generator's view of one live order.
type order struct {
	id         int
	status     int
	totalCents int64
}

// orderValue is the JSON value of an order row.
type orderValue struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	TotalCents int64  `json:"total_cents"`
	UpdatedAt  string `json:"updated_at"`
}

// OrderKey is the row key of order id.
func OrderKey(id int) string { return fmt.Sprintf("o-%06d", id) }

// Generator produces the synthetic order workload. Each mutation is:
//
//   - ~60% an upsert of a whole order: a new id (the id space only grows) or
//     an edit of a live order, mostly from a hot set of live orders;
//   - ~30% a status update (placed -> paid -> picked_up -> delivered);
//   - ~10% a delete of a delivered order (deleted ids never come back).
//
// When the operation drawn has no candidate (no delivered order to delete),
// the next kind is used. New ids are drawn more often while fewer than keys
// orders are live, so the live set hovers around keys. It is safe for
// concurrent use.
type Generator struct {
	mu        sync.Mutex
	table     string
	keys      int
	hot       int
	rng       *rand.Rand
	now       func() time.Time
	nextID    int
	orders    map[int]*order
	active    idSet // not delivered
	delivered idSet
}

// NewGenerator returns a generator for table with about keys live orders.
// now stamps updated_at (time.Now when nil).
func NewGenerator(table string, keys int, seed uint64, now func() time.Time) *Generator {
	if now == nil {
		now = time.Now
	}
	keys = max(keys, 1)
	return &Generator{
		table: table, keys: keys, hot: max(keys/10, 1),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: now,
		nextID: 1, orders: make(map[int]*order),
		active: newIDSet(), delivered: newIDSet(),
	}
}

// Next returns n mutations.
func (g *Generator) Next(n int) []*wailv1.Mutation {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*wailv1.Mutation, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}

func (g *Generator) next() *wailv1.Mutation {
	r := g.rng.IntN(100)
	if r < 10 {
		if m, ok := g.remove(); ok {
			return m
		}
	}
	if r < 40 {
		if m, ok := g.advance(); ok {
			return m
		}
	}
	return g.upsert()
}

// upsert creates an order or edits the total of a live one.
func (g *Generator) upsert() *wailv1.Mutation {
	live := g.active.len() + g.delivered.len()
	newPct := 50
	if live >= g.keys {
		newPct = 10
	}
	if g.active.len() == 0 || g.rng.IntN(100) < newPct {
		o := &order{id: g.nextID, totalCents: 100 + g.rng.Int64N(50000)}
		g.nextID++
		g.orders[o.id] = o
		g.active.add(o.id)
		return g.put(o)
	}
	id := g.active.pick(g.rng, g.hot, 80)
	o := g.orders[id]
	o.totalCents += g.rng.Int64N(2001) - 1000
	o.totalCents = max(o.totalCents, 100)
	return g.put(o)
}

// advance moves a live order to its next status.
func (g *Generator) advance() (*wailv1.Mutation, bool) {
	if g.active.len() == 0 {
		return nil, false
	}
	id := g.active.pick(g.rng, g.hot, 50)
	o := g.orders[id]
	o.status++
	if o.status == delivered {
		g.active.remove(id)
		g.delivered.add(id)
	}
	return g.put(o), true
}

// remove deletes a delivered order.
func (g *Generator) remove() (*wailv1.Mutation, bool) {
	if g.delivered.len() == 0 {
		return nil, false
	}
	id := g.delivered.pick(g.rng, 0, 0)
	g.delivered.remove(id)
	delete(g.orders, id)
	return &wailv1.Mutation{Table: g.table, Key: []byte(OrderKey(id)), Op: wailv1.Op_OP_DELETE}, true
}

func (g *Generator) put(o *order) *wailv1.Mutation {
	v, _ := json.Marshal(orderValue{
		OrderID: OrderKey(o.id), Status: statuses[o.status], TotalCents: o.totalCents,
		UpdatedAt: g.now().UTC().Format(time.RFC3339Nano),
	})
	return &wailv1.Mutation{Table: g.table, Key: []byte(OrderKey(o.id)), Op: wailv1.Op_OP_UPSERT, Value: v}
}

// idSet is a set of ids with O(1) add, remove and random pick.
type idSet struct {
	ids []int
	pos map[int]int
}

func newIDSet() idSet { return idSet{pos: make(map[int]int)} }

func (s *idSet) len() int { return len(s.ids) }

func (s *idSet) add(id int) {
	s.pos[id] = len(s.ids)
	s.ids = append(s.ids, id)
}

func (s *idSet) remove(id int) {
	i, ok := s.pos[id]
	if !ok {
		return
	}
	last := s.ids[len(s.ids)-1]
	s.ids[i] = last
	s.pos[last] = i
	s.ids = s.ids[:len(s.ids)-1]
	delete(s.pos, id)
}

// pick returns a random id: with probability hotPct% from the first hot
// positions (the hot set), else from the whole set. The set must not be
// empty.
func (s *idSet) pick(rng *rand.Rand, hot, hotPct int) int {
	n := len(s.ids)
	if hot > 0 && rng.IntN(100) < hotPct {
		n = min(n, hot)
	}
	return s.ids[rng.IntN(n)]
}
