package cassandra

// The statements on a wail table (wail_<name>), in one place so that a
// test can check what each one reads against what the INSERT writes.

// insertStmt writes a row: every regular column, at the version as the
// write timestamp. Its values: key, value, version, deleted, schema_id,
// version.
func insertStmt(q string) string {
	return "INSERT INTO " + q + " (key, value, version, deleted, schema_id) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
}

// getStmt reads a row (Get).
func getStmt(q string) string {
	return "SELECT value, version, deleted, schema_id FROM " + q + " WHERE key = ?"
}

// versionStmt reads a key's version before its INSERT (writeKey), at the
// write consistency.
func versionStmt(q string) string {
	return "SELECT version FROM " + q + " WHERE key = ?"
}
