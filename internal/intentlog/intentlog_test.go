package intentlog

import "testing"

// Vectors from Kafka's own tests (org.apache.kafka.common.utils.UtilsTest
// testMurmur2) so that keys land on the same partition as with Kafka.
func TestMurmur2MatchesKafka(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, c := range cases {
		if got := int32(Murmur2([]byte(c.in))); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPartitionInRange(t *testing.T) {
	t.Parallel()
	for _, n := range []int32{1, 3, 8, 64} {
		for i := 0; i < 1000; i++ {
			key := []byte{byte(i), byte(i >> 8), 'k'}
			if p := Partition(key, n); p < 0 || p >= n {
				t.Fatalf("Partition(%v, %d) = %d", key, n, p)
			}
		}
	}
}
