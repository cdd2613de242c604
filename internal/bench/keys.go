package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// keyBytes is the length of every bench key: a letter and 15 digits.
const keyBytes = 16

// KeySampler draws indexes of the key space [0, n).
type KeySampler interface {
	Sample(r *rand.Rand) int
}

// Uniform draws every index with the same probability.
type Uniform struct{ N int }

// Sample implements KeySampler.
func (u Uniform) Sample(r *rand.Rand) int { return r.IntN(u.N) }

// Zipf draws index k-1 for rank k in 1..n with probability proportional to
// k^-s, for any s > 0 (math/rand's Zipf needs s > 1). It is the
// rejection-inversion sampler of Hörmann and Derflinger ("Rejection-inversion
// to generate variates from monotone discrete distributions", 1996), in the
// form of Apache Commons RNG's RejectionInversionZipfSampler: O(1) memory and
// time per sample, exact (no approximation of the distribution).
type Zipf struct {
	n   int
	s   float64
	hx1 float64 // H(1.5) - 1
	hn  float64 // H(n + 0.5)
	sv  float64 // the squeeze: ranks this close to x are accepted at once
}

// NewZipf returns a sampler over n keys with exponent s.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 || !(s > 0) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("zipf: need n >= 1 and s > 0, got n=%d s=%v", n, s)
	}
	z := &Zipf{n: n, s: s}
	z.hx1 = z.hIntegral(1.5) - 1
	z.hn = z.hIntegral(float64(n) + 0.5)
	z.sv = 2 - z.hIntegralInverse(z.hIntegral(2.5)-z.h(2))
	return z, nil
}

// Sample implements KeySampler: the most frequent key is index 0.
func (z *Zipf) Sample(r *rand.Rand) int {
	for {
		u := z.hn + r.Float64()*(z.hx1-z.hn)
		x := z.hIntegralInverse(u)
		k := min(max(int(x+0.5), 1), z.n)
		if float64(k)-x <= z.sv || u >= z.hIntegral(float64(k)+0.5)-z.h(float64(k)) {
			return k - 1
		}
	}
}

// h is the unnormalized density x^-s.
func (z *Zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

// hIntegral is H(x) = (x^(1-s) - 1) / (1-s), or log(x) when s = 1.
func (z *Zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return helper2((1-z.s)*lx) * lx
}

// hIntegralInverse is the inverse of hIntegral.
func (z *Zipf) hIntegralInverse(x float64) float64 {
	t := max(x*(1-z.s), -1) // t < -1 only through rounding
	return math.Exp(helper1(t) * x)
}

// helper1 is log1p(x)/x, continuous at 0.
func helper1(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

// helper2 is expm1(x)/x, continuous at 0.
func helper2(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x/3*(1+0.25*x))
}

// Hot sends Share of the draws uniformly to the first Keys indexes (the hot
// set) and the rest to Base.
type Hot struct {
	Base  KeySampler
	Share float64
	Keys  int
}

// Sample implements KeySampler.
func (h Hot) Sample(r *rand.Rand) int {
	if r.Float64() < h.Share {
		return r.IntN(h.Keys)
	}
	return h.Base.Sample(r)
}

// NewKeySampler returns the sampler the options describe.
func NewKeySampler(o *Options) (KeySampler, error) {
	var base KeySampler = Uniform{N: o.Keys}
	if o.Dist == DistZipf {
		z, err := NewZipf(o.Keys, o.ZipfS)
		if err != nil {
			return nil, err
		}
		base = z
	}
	if o.HotShare > 0 {
		return Hot{Base: base, Share: o.HotShare, Keys: o.HotKeys}, nil
	}
	return base, nil
}

// Workload makes the mutations of the bench. Updates and deletes pick a key
// of the key space with the sampler; inserts take a key never used before
// (outside the key space). Tables are picked uniformly. It is safe for
// concurrent use when each goroutine brings its own *rand.Rand.
type Workload struct {
	tables    []string
	keys      KeySampler
	mix       Mix
	values    []byte // random bytes; values are windows of it
	valueSize int
	inserts   atomic.Int64
}

// NewWorkload returns the workload over tables.
func NewWorkload(o *Options, tables []string, keys KeySampler) *Workload {
	r := rand.New(rand.NewPCG(o.Seed, 1))
	vals := make([]byte, o.ValueSize+4096)
	for i := range vals {
		vals[i] = byte(r.Uint32())
	}
	return &Workload{tables: tables, keys: keys, mix: o.Mix, values: vals, valueSize: o.ValueSize}
}

// Next returns n mutations.
func (w *Workload) Next(r *rand.Rand, n int) []*wailv1.Mutation {
	// One allocation for the batch's mutations and one for its keys: the
	// load generator shares the process (and the cores) with the server
	// it measures.
	out := make([]*wailv1.Mutation, n)
	ms := make([]wailv1.Mutation, n)
	keys := make([]byte, 0, n*keyBytes)
	total := w.mix.total()
	for i := range out {
		m := &ms[i]
		m.Table, m.Op = w.tables[r.IntN(len(w.tables))], wailv1.Op_OP_UPSERT
		start := len(keys)
		switch op := r.IntN(total); {
		case op < w.mix.Insert:
			keys = appendPaddedKey(keys, 'n', w.inserts.Add(1))
		case op < w.mix.Insert+w.mix.Update:
			keys = appendPaddedKey(keys, 'k', int64(w.keys.Sample(r)))
		default:
			keys = appendPaddedKey(keys, 'k', int64(w.keys.Sample(r)))
			m.Op = wailv1.Op_OP_DELETE
		}
		m.Key = keys[start:len(keys):len(keys)]
		if m.Op == wailv1.Op_OP_UPSERT {
			off := r.IntN(len(w.values) - w.valueSize + 1)
			m.Value = w.values[off : off+w.valueSize : off+w.valueSize]
		}
		out[i] = m
	}
	return out
}

// Key is the key of index i of the key space: "k" and 15 digits.
func Key(i int) []byte { return paddedKey('k', int64(i)) }

// InsertKey is the key of the n-th insert: "n" and 15 digits.
func InsertKey(n int64) []byte { return paddedKey('n', n) }

func paddedKey(prefix byte, n int64) []byte {
	return appendPaddedKey(make([]byte, 0, keyBytes), prefix, n)
}

// appendPaddedKey appends prefix and n in keyBytes-1 digits (more when n
// has more) to b.
func appendPaddedKey(b []byte, prefix byte, n int64) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	b = append(b, prefix)
	for range keyBytes - 1 - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}
