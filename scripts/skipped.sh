#!/bin/sh
# skipped.sh FILE: the end of `make test`'s output when integration tests
# skipped for want of a service. FILE holds one line per skipped test,
# "package<TAB>test<TAB>why" (internal/servicetest); the summary has one
# line per package, top-level test and reason, with how many tests (the
# subtests of a suite) it skipped. Prints nothing when FILE is empty or
# missing.
[ -s "$1" ] || exit 0
awk -F'\t' '
{
	top = $2; sub(/\/.*/, "", top)
	k = $1 "\t" top "\t" $3
	if (!(k in n)) keys[++m] = k
	n[k]++; total++
}
END {
	printf "\n!! %d INTEGRATION TESTS DID NOT RUN: a service is missing (make services starts them; under CI=true they fail instead):\n", total
	for (i = 1; i <= m; i++) {
		split(keys[i], f, "\t")
		printf "!!   %s %s (%d test%s): %s\n", f[1], f[2], n[keys[i]], n[keys[i]] == 1 ? "" : "s", f[3]
	}
}' "$1" | { IFS= read -r blank; IFS= read -r head; printf '%s\n%s\n' "$blank" "$head"; sort; }
