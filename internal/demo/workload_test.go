package demo

import (
	"encoding/json"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestGeneratorOrderLifecycle checks that statuses only move forward, only
// delivered orders are deleted, deleted ids never come back, keys are
// updated repeatedly, and the op mix is roughly 60/30/10.
func TestGeneratorOrderLifecycle(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Unix(1700000000, 0) }
	g := NewGenerator("orders", 200, 42, now)
	rank := map[string]int{"placed": 0, "paid": 1, "picked_up": 2, "delivered": 3}
	last := map[string]orderValue{}
	deleted := map[string]bool{}
	var upserts, statusChanges, deletes, updates int
	const n = 20000
	for _, batch := range [][]*wailv1.Mutation{g.Next(n / 2), g.Next(n / 2)} {
		for _, m := range batch {
			key := string(m.GetKey())
			if m.GetTable() != "orders" || deleted[key] {
				t.Fatalf("mutation %v: wrong table or deleted key reused", m)
			}
			prev, seen := last[key]
			if m.GetOp() == wailv1.Op_OP_DELETE {
				if !seen || prev.Status != "delivered" {
					t.Fatalf("delete of %s in status %q", key, prev.Status)
				}
				deletes++
				deleted[key] = true
				continue
			}
			var v orderValue
			if err := json.Unmarshal(m.GetValue(), &v); err != nil || v.OrderID != key || v.UpdatedAt == "" {
				t.Fatalf("bad value %s for %s: %v", m.GetValue(), key, err)
			}
			switch {
			case !seen:
				upserts++
			case rank[v.Status] == rank[prev.Status]+1:
				statusChanges++
			case v.Status == prev.Status:
				upserts++
				updates++
			default:
				t.Fatalf("%s went from %s to %s", key, prev.Status, v.Status)
			}
			last[key] = v
		}
	}
	pct := func(k int) float64 { return 100 * float64(k) / n }
	if p := pct(deletes); p < 5 || p > 12 {
		t.Errorf("deletes = %.1f%%, want about 10%%", p)
	}
	if p := pct(statusChanges); p < 25 || p > 40 {
		t.Errorf("status updates = %.1f%%, want about 30%%", p)
	}
	if updates < n/5 {
		t.Errorf("only %d updates of existing orders", updates)
	}
	if live := len(last) - len(deleted); live < 100 || live > 400 {
		t.Errorf("%d live orders, want about 200", live)
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Unix(0, 0) }
	a, b := NewGenerator("t", 10, 7, now).Next(100), NewGenerator("t", 10, 7, now).Next(100)
	for i := range a {
		if string(a[i].GetKey()) != string(b[i].GetKey()) || string(a[i].GetValue()) != string(b[i].GetValue()) {
			t.Fatalf("mutation %d differs for the same seed", i)
		}
	}
}

func TestLag(t *testing.T) {
	t.Parallel()
	r := &wailv1.DescribeTableResponse{IntentEndOffsets: []int64{10, 5, 7}, CommittedOffsets: []int64{4, 5}}
	if got := Lag(r); got != 6 {
		t.Errorf("Lag = %d, want 6", got)
	}
}
