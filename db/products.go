package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// InsertProductIfAbsent adds p to the catalog unless its SKU is there
// already, and reports whether it did: seeding never overwrites a price an
// operator has changed since.
func InsertProductIfAbsent(ctx context.Context, q Querier, p app.Product) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO products (sku, name, price, currency, active) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (sku) DO NOTHING`, p.SKU, p.Name, p.Price, p.Currency, p.Active)
	if err != nil {
		return false, fmt.Errorf("insert product %s: %w", p.SKU, err)
	}
	return tag.RowsAffected() == 1, nil
}

// GetProducts reads the products with the given SKUs, by SKU; a SKU with
// no product is absent from the map. Inside the transaction that records
// an order, it takes the prices that order is charged at.
func GetProducts(ctx context.Context, q Querier, skus []string) (map[string]app.Product, error) {
	rows, err := q.Query(ctx, `SELECT sku, name, price, currency, active FROM products WHERE sku = ANY($1)`, skus)
	if err != nil {
		return nil, fmt.Errorf("get products: %w", err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[app.Product])
	if err != nil {
		return nil, fmt.Errorf("get products: %w", err)
	}
	m := make(map[string]app.Product, len(ps))
	for _, p := range ps {
		m[p.SKU] = p
	}
	return m, nil
}

// ListProducts reads the whole catalog, by SKU.
func ListProducts(ctx context.Context, q Querier) ([]app.Product, error) {
	rows, err := q.Query(ctx, `SELECT sku, name, price, currency, active FROM products ORDER BY sku`)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[app.Product])
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return ps, nil
}

// GetProduct reads one product; an unknown SKU is an ENOTFOUND error.
func GetProduct(ctx context.Context, q Querier, sku string) (app.Product, error) {
	rows, err := q.Query(ctx, `SELECT sku, name, price, currency, active FROM products WHERE sku = $1`, sku)
	if err != nil {
		return app.Product{}, fmt.Errorf("get product %s: %w", sku, err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[app.Product])
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Product{}, app.Errorf(app.ENOTFOUND, "no product %q", sku)
	}
	if err != nil {
		return app.Product{}, fmt.Errorf("get product %s: %w", sku, err)
	}
	return p, nil
}
