// Package localpg owns the project-local PostgreSQL cluster: a server under
// the checkout's .data/ that `make run`, `spillway db start` and the tests
// get with nothing to set up beyond the server binaries. It finds binaries
// of the cluster's major version, creates the cluster with initdb, rewrites
// the settings it manages, and starts, stops and inspects the server. The
// bootstrap runs under a lock file, so that parallel test binaries and
// commands agree on one cluster per checkout; as root it runs the cluster
// as the postgres OS user, because initdb and postgres refuse root.
//
// It is for development and tests only. The product's commands and
// db/dbtest never use it when DATABASE_URL is set; they take that server
// as it is. Only the benchmark always uses it, on purpose: it creates and
// drops databases, which has no place on a shared server. A deployment
// sets DATABASE_URL, so this code manages a server process and OS state
// (users, permissions, files) that no deployment has, which is why it sits
// apart from the queries in package db.
//
// The throwaway-database helpers, CreateTestDatabase and DropDatabase,
// work on whichever server a URL names, DATABASE_URL's too. They live here
// rather than in db/dbtest because the benchmark, which is not test code,
// creates fresh databases as well, and they share the connect and
// create-with-retry code that the cluster's bootstrap uses.
package localpg
