# jars.sh — sourced by kafka.sh and cassandra.sh (it needs their log and die).
#
# fetch_jars POM LIBS MAIN: copy the runtime jars of the Maven project POM
# into the directory LIBS (mvn dependency:copy-dependencies), unless they are
# there for this very pom (its hash is stamped in LIBS/.pom.sha256); MAIN is
# a glob of the jar that must be among them. mvn's output goes to mvn.log
# beside LIBS. The jars replace LIBS only once all are there.
fetch_jars() {
	local pom=$1 libs=$2 main=$3 want have="" mvnlog
	mvnlog=$(dirname "$libs")/mvn.log
	want=$(sha256sum "$pom" | cut -d' ' -f1)
	[[ -f $libs/.pom.sha256 ]] && have=$(<"$libs/.pom.sha256")
	[[ $have == "$want" ]] && return 0
	log "fetching jars (mvn dependency:copy-dependencies)"
	rm -rf "$libs.new"
	mkdir -p "$libs.new"
	if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$libs.new" >"$mvnlog" 2>&1; then
		tail -30 "$mvnlog" >&2
		die "mvn failed (full output in $mvnlog)"
	fi
	compgen -G "$libs.new/$main" >/dev/null || die "no $main in $libs.new"
	echo "$want" >"$libs.new/.pom.sha256"
	rm -rf "$libs"
	mv "$libs.new" "$libs"
}
