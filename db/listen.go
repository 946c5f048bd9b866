package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Listen calls fn with each notification's payload on channel until ctx
// ends, calling ready once LISTEN is in effect (so the caller can read
// what changed before then). It holds one pooled connection.
func Listen(ctx context.Context, pool *pgxpool.Pool, channel string, ready func(), fn func(payload string)) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	defer func() {
		// Leave the pooled connection clean (or drop it) for its next user.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck
		}
	}()
	ready()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
