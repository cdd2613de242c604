package api

import "testing"

// TestDotSegments: what a server behind wail (an external schema
// registry) may resolve as "." or ".." is a dot segment, whatever its
// spelling; names that only contain dots are not.
func TestDotSegments(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/registry/subjects/x/versions", false},
		{"/registry/subjects/a.b/versions", false},
		{"/registry/subjects/.../versions", false},
		{"/registry/subjects/..x/versions", false},
		{"/registry/subjects/x;v=1/versions", false},
		{"/registry/subjects/../versions", true},
		{"/registry/subjects/./versions", true},
		{"/registry/subjects/%2E%2E/versions", true},
		{"/registry/subjects/%2e/versions", true},
		{"/registry/subjects/a%2F..%2Fb", true},
		{"/registry/compatibility/..;/subjects/x/versions", true},
		{"/registry/compatibility/..;x=1/subjects/x/versions", true},
		{"/registry/compatibility/.;/subjects/x/versions", true},
		{"/registry/compatibility/%2E%2E%3B/subjects/x/versions", true},
		{"/registry/compatibility/..%5Csubjects", true},
		{"/registry/compatibility/a%5C..%5Cb", true},
		{"/registry/subjects/%zz", true}, // does not decode
	} {
		if got := DotSegments(tc.path); got != tc.want {
			t.Errorf("DotSegments(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
