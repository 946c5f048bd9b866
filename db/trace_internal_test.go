package db

import "testing"

func TestSpanNameIsTheStatementsNameOrVerb(t *testing.T) {
	for sql, want := range map[string]string{
		"-- name: JobInsertFastMany :many\nINSERT INTO river_job": "JobInsertFastMany",
		"-- a comment\n  select 1":                                "SELECT",
		"UPDATE operations SET":                                   "UPDATE",
		"begin":                                                   "BEGIN",
		"":                                                        "query",
	} {
		if got := verb(sql); got != want {
			t.Errorf("verb(%q) = %q, want %q", sql, got, want)
		}
	}
}
