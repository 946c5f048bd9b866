package jobs

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// listenDriver is River's pgx driver with its notifier's LISTEN taken from
// another pool. Through PgBouncer in transaction mode a LISTEN on a pooled
// connection is accepted and then hears nothing once its transaction ends,
// so River would only notice new jobs and leadership changes by polling;
// the listener instead holds a connection straight to Postgres, while
// every query, NOTIFY included (delivered at commit, which a pooler
// passes on), goes through the pooler.
type listenDriver struct {
	*riverpgxv5.Driver
	listen *riverpgxv5.Driver
}

func (d listenDriver) GetListener(params *riverdriver.GetListenenerParams) riverdriver.Listener {
	return d.listen.GetListener(params)
}

// newDriver is River's driver on pool, listening on listenPool when set.
func newDriver(pool, listenPool *pgxpool.Pool) riverdriver.Driver[pgx.Tx] {
	if listenPool == nil {
		return riverpgxv5.New(pool)
	}
	return listenDriver{Driver: riverpgxv5.New(pool), listen: riverpgxv5.New(listenPool)}
}
