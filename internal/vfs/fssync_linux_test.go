package vfs

import "testing"

func TestReleaseAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"5.8.0", true},
		{"5.7.19", false},
		{"6.18.44-fc-v657", true},
		{"5.10.0-13-amd64", true},
		{"4.19.0", false},
		{"5.8-rc1", true},
		{"5", false},
		{"", false},
		{"x.y", false},
	} {
		if got := releaseAtLeast(tc.rel, syncfsMinKernel); got != tc.want {
			t.Errorf("releaseAtLeast(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}
