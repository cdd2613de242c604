package bench

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestZipfRankFrequency draws 300k ranks and checks them against the exact
// distribution P(k) = k^-s / H(n,s): every rank expected 100+ times is
// within 5 standard deviations, and the log-log rank-frequency line over
// the top 50 ranks has slope -s.
func TestZipfRankFrequency(t *testing.T) {
	t.Parallel()
	const n, draws = 1000, 300000
	for _, s := range []float64{0.5, 0.99, 1.0, 1.1, 2.0} {
		t.Run("s="+strconv.FormatFloat(s, 'g', -1, 64), func(t *testing.T) {
			t.Parallel()
			z, err := NewZipf(n, s)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			counts := make([]float64, n)
			for range draws {
				counts[z.Sample(r)]++
			}
			var h float64
			for k := 1; k <= n; k++ {
				h += math.Pow(float64(k), -s)
			}
			for k := 1; k <= n; k++ {
				p := math.Pow(float64(k), -s) / h
				want := p * draws
				if want < 100 {
					continue
				}
				if sd := math.Sqrt(draws * p * (1 - p)); math.Abs(counts[k-1]-want) > 5*sd {
					t.Errorf("rank %d: %v draws, want %.0f ± %.0f", k, counts[k-1], want, 5*sd)
				}
			}
			var xs, ys []float64
			for k := 1; k <= 50; k++ {
				if counts[k-1] > 0 {
					xs, ys = append(xs, math.Log(float64(k))), append(ys, math.Log(counts[k-1]))
				}
			}
			if slope := fitSlope(xs, ys); math.Abs(slope+s) > 0.05 {
				t.Errorf("log-log slope of the top 50 ranks = %.3f, want %.3f", slope, -s)
			}
		})
	}
}

func fitSlope(xs, ys []float64) float64 {
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	n := float64(len(xs))
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func TestZipfEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n       int
		s       float64
		wantErr bool
	}{
		{1, 1.1, false}, {2, 0.01, false}, {10, 50, false},
		{0, 1, true}, {10, 0, true}, {10, -1, true}, {10, math.NaN(), true}, {10, math.Inf(1), true},
	}
	for _, tc := range tests {
		z, err := NewZipf(tc.n, tc.s)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewZipf(%d, %v): err = %v, want error %v", tc.n, tc.s, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		r := rand.New(rand.NewPCG(3, 4))
		for range 10000 {
			if k := z.Sample(r); k < 0 || k >= tc.n {
				t.Fatalf("NewZipf(%d, %v).Sample() = %d, out of range", tc.n, tc.s, k)
			}
		}
	}
}

func TestHotShare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		share float64
		hot   int
	}{{0.2, 10}, {0.9, 1}, {0.5, 100}}
	for _, tc := range tests {
		const n, draws = 10000, 200000
		h := Hot{Base: Uniform{N: n}, Share: tc.share, Keys: tc.hot}
		r := rand.New(rand.NewPCG(5, 6))
		var inHot float64
		for range draws {
			if h.Sample(r) < tc.hot {
				inHot++
			}
		}
		want := tc.share + (1-tc.share)*float64(tc.hot)/n
		if got := inHot / draws; math.Abs(got-want) > 0.01 {
			t.Errorf("share %v over %d hot keys: %.3f of the draws hit the hot set, want %.3f", tc.share, tc.hot, got, want)
		}
	}
}

func TestWorkloadMix(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Mix, o.Keys, o.ValueSize, o.Seed = Mix{Insert: 20, Update: 70, Delete: 10}, 100, 33, 7
	w := NewWorkload(&o, []string{"a", "b"}, Uniform{N: o.Keys})
	r := rand.New(rand.NewPCG(8, 9))
	var ins, upd, del int
	tables := map[string]int{}
	seen := map[string]bool{}
	for _, m := range w.Next(r, 20000) {
		tables[m.GetTable()]++
		if len(m.GetKey()) != keyBytes {
			t.Fatalf("key %q is not %d bytes", m.GetKey(), keyBytes)
		}
		switch {
		case m.GetOp() == wailv1.Op_OP_DELETE:
			del++
		case m.GetKey()[0] == 'n':
			ins++
			if seen[string(m.GetKey())] {
				t.Fatalf("insert key %s used twice", m.GetKey())
			}
			seen[string(m.GetKey())] = true
		default:
			upd++
		}
		if m.GetOp() == wailv1.Op_OP_UPSERT && len(m.GetValue()) != 33 {
			t.Fatalf("value of %d bytes, want 33", len(m.GetValue()))
		}
	}
	for name, got := range map[string]int{"insert": ins, "update": upd, "delete": del} {
		want := map[string]int{"insert": 4000, "update": 14000, "delete": 2000}[name]
		if math.Abs(float64(got-want)) > 0.05*float64(want) {
			t.Errorf("%d %ss in 20000, want about %d", got, name, want)
		}
	}
	if math.Abs(float64(tables["a"]-tables["b"])) > 600 {
		t.Errorf("tables picked unevenly: %v", tables)
	}
}

func TestParseMix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{"insert=20,update=70,delete=10", Mix{20, 70, 10}, false},
		{" update=1 ", Mix{0, 1, 0}, false},
		{"delete=3,insert=1", Mix{1, 0, 3}, false},
		{"update=0", Mix{}, true},
		{"upsert=5", Mix{}, true},
		{"update", Mix{}, true},
		{"update=-1", Mix{}, true},
		{"update=x", Mix{}, true},
	}
	for _, tc := range tests {
		got, err := ParseMix(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseMix(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil {
			if back, _ := ParseMix(got.String()); back != got {
				t.Errorf("ParseMix(%q).String() does not parse back", tc.in)
			}
		}
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	if k := string(Key(42)); k != "k000000000000042" {
		t.Errorf("Key(42) = %q", k)
	}
	if k := string(InsertKey(123456789)); k != "n000000123456789" {
		t.Errorf("InsertKey(123456789) = %q", k)
	}
	if bytes.HasPrefix(probeKey, []byte("k")) || bytes.HasPrefix(probeKey, []byte("n")) {
		t.Errorf("probe key %q may collide with bench keys", probeKey)
	}
}

// TestWorkloadNextAllocs: a batch costs the load generator three
// allocations whatever its size (the mutations, their pointers, their
// keys): it shares the cores with the server it measures.
func TestWorkloadNextAllocs(t *testing.T) {
	o := DefaultOptions()
	o.Mix, o.Keys, o.ValueSize = Mix{Insert: 20, Update: 70, Delete: 10}, 1000, 33
	w := NewWorkload(&o, []string{"a", "b"}, Uniform{N: o.Keys})
	r := rand.New(rand.NewPCG(1, 2))
	var ms []*wailv1.Mutation
	if n := testing.AllocsPerRun(20, func() { ms = w.Next(r, 1000) }); n > 3 {
		t.Errorf("Next(1000) allocated %v times, want 3", n)
	}
	// Each key is its own slice: appending to one never writes another.
	k0 := ms[0].GetKey()
	if cap(k0) != len(k0) {
		t.Errorf("key %q: capacity %d, want its length", k0, cap(k0))
	}
}
