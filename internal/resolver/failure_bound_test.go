package resolver

import "testing"

// TestCoreOneAttemptOutageStart: with MaxAttempts 1, the first failure of
// a store or bus outage (counted when it comes: the backend served others
// since the key's previous attempt) is the key's only counted failure and
// still unsure (see unsureFail): it dead-letters nothing until it is
// confirmed, by the key's next counted failure. Before, it dead-lettered
// the key at once, before the failures of other keys after it could take
// it back: a store or bus outage dead-lettered the keys whose attempt
// came first in it. A key whose failures are its own is still
// dead-lettered, at its next counted failure.
func TestCoreOneAttemptOutageStart(t *testing.T) {
	t.Parallel()
	one := failParams
	one.MaxAttempts = 1
	tests := []struct {
		name  string
		steps []step
	}{
		{"read: other keys and the probe failing after it take it back: store outages never dead-letter",
			outageStarts(6, 0, errRes, false)},
		{"read: another key unavailable after it takes nothing back: a is dead-lettered at its next counted failure",
			outageStarts(3, 2, unavailableRes, false)},
		{"read: a probe that succeeds after it confirms it: a is dead-lettered at its next counted failure",
			outageStarts(3, 2, errRes, true)},
		{"publish: two other events failing after it take it back: bus outages never dead-letter",
			busOutages(5, 0, pubFail{together: true}, 2)},
		{"publish: one other event failing after it takes nothing back: a is dead-lettered at its next counted failure",
			busOutages(3, 2, pubFail{together: true}, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, one, 0, nil, tc.steps)
		})
	}
}
